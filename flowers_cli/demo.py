"""`flowers demo` (what `make demo` runs): up + push + wait for the first approved model + predict.

The photos: --data, else ../shared/datasets/flower_photos, else TensorFlow's flower_photos
archive downloaded once into HOME/downloads (with a progress bar); a clear error when none
of these works. It then keeps serving (the web page) until Ctrl-C, unless --exit.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib import settings
from chalicelib.pipeline.records import FAILED, REGISTERED
from flowers_cli.home import SHARED, configure, start_stack
from flowers_cli.output import predict_table
from flowers_cli.progress import Progress

if TYPE_CHECKING:
    from chalicelib.local_stack.stack import LocalStack

DOWNLOAD_URL = "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"


class DemoError(RuntimeError):
    pass


def find_data(args: argparse.Namespace, home: Path, url: str = DOWNLOAD_URL, shared_root: Path = SHARED) -> Path:
    if args.data:
        data = Path(args.data).expanduser()
        if not data.is_dir():
            raise DemoError(f"--data {data} is not a folder of photos")
        return data
    shared = shared_root / "datasets" / "flower_photos"
    if shared.is_dir():
        return shared
    cached = home / "downloads" / "flower_photos"
    if (cached / ".complete").exists():
        return cached
    try:
        return download(url, home / "downloads")
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise DemoError(f"no photos to train on: {shared} is not there and downloading {url} failed ({exc}). "
                        f"Pass --data DIR (a folder per class, or name.jpg + name.txt), or make DATA=DIR demo.") from None


def download(url: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "flower_photos.tgz"
    partial = folder / "flower_photos.tgz.part"
    with urllib.request.urlopen(url, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0)
        bar = Progress(total, "download flower_photos", unit="bytes")
        with open(partial, "wb") as out:
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
        bar.close()
    os.replace(partial, archive)
    target = folder / "flower_photos"
    unpacking = folder / "unpacking"
    shutil.rmtree(unpacking, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(unpacking, filter="data")
    source = unpacking / "flower_photos" if (unpacking / "flower_photos").is_dir() else unpacking
    shutil.rmtree(target, ignore_errors=True)
    os.replace(source, target)
    shutil.rmtree(unpacking, ignore_errors=True)
    (target / ".complete").write_text(url)
    archive.unlink()
    return target


def sample(data: Path, count: int = 5) -> list[Path]:
    """One photo of each class (the first few classes), for the predictions shown at the end."""
    from chalicelib.contract.imaging import has_image_extension

    photos = sorted(p for p in data.rglob("*") if p.is_file() and has_image_extension(p.name))
    picked, seen = [], set()
    for photo in photos:
        label = photo.with_suffix(".txt")
        group = label.read_text().strip() if label.is_file() else photo.parent  # ModelArts layout, else folder per class
        if group not in seen:
            seen.add(group)
            picked.append(photo)
    return (picked or photos)[:count]


def wait_for_model(stack: LocalStack, timeout: float, since: float) -> tuple[str, str]:
    """('', reason) when the first run ended without an approved model; (version, '') otherwise."""
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        production = stack.svc.registry.production()
        if production is not None:
            return production.version, ""
        status = stack.svc.read_model.status()
        job = status.get("running_job")
        outcome = status.get("last_outcome") or {}
        if job:
            progress = job.get("progress") or {}
            metrics = progress.get("metrics") or {}
            line = f"demo: {job['stage']}" + (f", {progress.get('phase')} epoch {progress['epoch']}" if progress.get("epoch") else "")
            line += "".join(f", {k} {metrics[k]:.3f}" for k in ("accuracy", "val_accuracy") if k in metrics)
        else:
            line = f"demo: waiting ({status['next_run']['reason']})"
        if line != shown:
            print(line, flush=True)
            shown = line
        last = stack.svc.orchestrator.dataset_state().last_outcome
        finished = last is not None and last.status in (FAILED, REGISTERED) and last.at >= since
        if finished and not job and status.get("pending_uploads", 0) <= 0:
            if outcome["status"] == FAILED:
                return "", f"training failed: {outcome.get('reason')}"
            return "", (f"model {outcome['version']} is {outcome.get('model_status')}: {outcome.get('reason')}. "
                        f"Approve it with `flowers approve {outcome['version']}`.")
        time.sleep(1.0)
    return "", f"no approved model after {timeout:.0f}s; `flowers status` shows where it is"


def run(args: argparse.Namespace) -> int:
    from flowers_cli.client import Api
    from flowers_cli.push import FolderDestination, push

    if args.max_training_time is None and settings.variable("max_training_time") not in os.environ:
        args.max_training_time = 900  # the demo's budget: a good model on a laptop CPU in minutes
    home = configure(args, create=True)
    try:
        data = find_data(args, home)
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.time()
    stack = start_stack(args)
    try:
        print(f"demo: pushing {data} into {home / 'bucket'}", flush=True)
        report = push(data, FolderDestination(home / "bucket"))
        print(f"demo: {report.copied} file(s) copied, {report.unchanged} unchanged, {len(report.bad)} not usable", flush=True)
        version, problem = wait_for_model(stack, args.timeout, started)
        if not version:
            print(f"error: {problem}", file=sys.stderr)
            if args.exit:
                return 1
        else:
            print(f"\ndemo: model {version} is served.\n", flush=True)
            text, errors = predict_table(Api(stack.url), sample(data))
            print(text, flush=True)
            for error in errors:
                print(f"error: {error}", file=sys.stderr)
        print(f"\nOpen {stack.operator_link} to try your own photos (the link carries this home's operator token: keep it to "
              f"yourself); `flowers status`, `flowers models` in another terminal.", flush=True)
        if not args.exit:
            print("Ctrl-C stops.", flush=True)
            stack.wait()
        return 0 if version else 1
    finally:
        stack.stop()
