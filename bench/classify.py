"""Batch classification by upload, local mode: photos/s from a folder dropped into HOME/bucket/classify/
to every photo's line in HOME/bucket/predictions/*.jsonl.

A real `flowers up` (tests/local_fixtures.Up) serves a real model registered as approved without training
(the same mobilenet_v2 int8 as bench/predict.py and bench/load.py, built in build/bench-predict when missing).
In one run, on the same real JPEGs: --rounds drops of --photos photos each (copied in at once, into a new
sub-folder each time), timed from the first copy to the last line; and, for the share of the watcher and
the event delivery, the same photos through chalicelib.pipeline.batch_classify.run in this process (no server).

    python bench/classify.py                      # 500 photos x 3 rounds
    python bench/classify.py --model DIR --photos 100 --rounds 1
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]


def real_photos(root: Path, count: int) -> list[Path]:
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    per_class = -(-count // len(classes))
    found = [photo for label in classes for photo in sorted(label.glob("*.jpg"))[-per_class:]]  # the end: not bench-predict's training photos
    return found[:count]


def lines_in(folder: Path) -> dict[str, dict]:
    found = {}
    for output in folder.glob("*.jsonl"):
        for line in output.read_text().splitlines():
            item = json.loads(line)
            found[item["key"]] = item
    return found


def drop(home: Path, photos: list[Path], name: str, timeout: float) -> dict:
    inbox = home / "bucket" / "classify" / name
    inbox.mkdir(parents=True)
    outputs = home / "bucket" / "predictions"
    before = set(outputs.glob("*.jsonl")) if outputs.exists() else set()
    started = time.perf_counter()
    for photo in photos:
        shutil.copyfile(photo, inbox / photo.name)
    copied = time.perf_counter() - started
    wanted = {f"classify/{name}/{p.name}" for p in photos}
    while True:
        done = {k: v for k, v in lines_in(outputs).items() if k in wanted} if outputs.exists() else {}
        if len(done) == len(wanted):
            break
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{len(done)}/{len(wanted)} photos classified after {timeout} s")
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    batches = len(set(outputs.glob("*.jsonl")) - before)
    errors = sum(1 for v in done.values() if "error" in v)
    return {"photos": len(photos), "seconds": round(elapsed, 2), "copy_seconds": round(copied, 2),
            "photos_per_second": round(len(photos) / elapsed, 1), "batches": batches, "errors": errors}


def in_process(model: Path, photos: list[Path], scratch: Path) -> dict:
    """chalicelib.pipeline.batch_classify.run alone: the same photos, the local adapters, no watcher and no server."""
    from chalicelib.pipeline import batch_classify
    from chalicelib.pipeline.batch_classify import Photo
    from chalicelib.adapters.local.wiring import LocalAdapters
    from chalicelib.services import RegistryModelSource
    from chalicelib.serving.predictor import Predictor
    from chalicelib.settings import from_environ
    from local_fixtures import seed_approved_model

    home = scratch / "in-process"
    seed_approved_model(home, model)
    adapters = LocalAdapters(from_environ({"FLOWERS_MODE": "local", "FLOWERS_HOME": str(home)}))
    for photo in photos:
        target = home / "bucket" / "classify" / photo.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, target)
    predictor = Predictor(RegistryModelSource(adapters.registry, adapters.objects), 60)
    predictor.refresh()
    batch = [Photo(f"classify/{p.name}", str(i)) for i, p in enumerate(photos)]
    started = time.perf_counter()
    for start in range(0, len(batch), 100):  # the watcher's delivery size
        batch_classify.run(batch[start : start + 100], adapters.objects, "bucket", predictor)
    elapsed = time.perf_counter() - started
    return {"photos": len(photos), "seconds": round(elapsed, 2), "photos_per_second": round(len(photos) / elapsed, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a converted model folder; default: build one in --work")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "bench-predict")
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "classify.json")
    args = parser.parse_args()

    from data_fixtures import PHOTOS
    from local_fixtures import Up, seed_approved_model

    if args.model:
        model = args.model
    else:
        from predict import build  # bench/predict.py: mobilenet_v2 int8, head trained on cached features

        model = build(args.work, "mobilenet_v2", 30, "int8") / "converted"
    metadata = json.loads((model / "metadata.json").read_text())
    photos = real_photos(PHOTOS, args.photos)
    scratch = Path(tempfile.mkdtemp(prefix="flowers-bench-classify-"))
    up = None
    try:
        home = scratch / "up" / "home"
        seed_approved_model(home, model)
        up = Up(home)
        rounds = []
        for n in range(args.rounds):
            rounds.append(drop(home, photos, f"round-{n}", args.timeout))
            print(f"round {n + 1}: {rounds[-1]}", flush=True)
        up.stop()
        up = None
        alone = in_process(model, photos, scratch)
        print(f"batch_classify.run in this process: {alone}", flush=True)
    finally:
        if up is not None:
            up.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    rates = [r["photos_per_second"] for r in rounds]
    result = {
        "model": {"preset": metadata.get("preset"), "quantization": metadata.get("quantization"), "image_size": metadata.get("image_size")},
        "machine": {"cpus": os.cpu_count(), "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "rounds": rounds, "median_photos_per_second": statistics.median(rates), "in_process": alone,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if all(r["errors"] == 0 for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
