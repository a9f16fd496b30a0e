"""Local mode's own overhead, end to end, with `flowers up` as a real process (tiny preset).

  python bench/pipeline.py [--quiet-period 2] [--runs 2]

For each run it writes real photos into the bucket folder, then measures:
- upload -> training start: from the last photo landing in the bucket to the training
  subprocess starting (the job's recorded process start), minus the quiet period;
  what remains is the watcher's scan, the tick, the launch and the snapshot;
- conversion done -> first answer: from the conversion subprocess' exit (the runner's
  record) to the first POST /predict answered by the new version (a client polls every 20 ms).
Target: each at most 2 s. Run 1 serves the first model; runs 2 and 3 swap a served one.
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "datasets" / "flower_photos"
CLASSES = ("daisy", "roses", "sunflowers")
# Each later run adds a class, so the gate's floor alone decides (a model with other classes than the
# served one has no like-for-like comparison): every run's model is approved and swapped in.
NEW_CLASS = ("dandelion", "tulips")
TARGET_SECONDS = 2.0


def call(url: str, body: bytes | None = None, content_type: str = "image/jpeg"):
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": content_type} if body is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def write_photos(bucket: Path, classes, per_class: int) -> float:
    """ModelArts layout, each file landing whole (temporary name, then a rename). Returns when the last landed."""
    for label in classes:
        for photo in sorted((PHOTOS / label).glob("*.jpg"))[:per_class]:
            for name, data in ((f"{label}_{photo.stem}.txt", (label + "\n").encode()), (f"{label}_{photo.name}", photo.read_bytes())):
                partial = bucket / f".{name}.part"
                partial.write_bytes(data)
                partial.replace(bucket / name)
    return time.time()


def wait(predicate, timeout: float, what: str, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"no {what} after {timeout}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quiet-period", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--per-class", type=int, default=8)
    args = parser.parse_args()
    if not PHOTOS.is_dir():
        print(f"error: {PHOTOS} is missing", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="flowers-bench-pipeline-"))
    home = work / "home"
    log = open(work / "up.log", "w")
    command = [sys.executable, "-m", "flowers_cli.main", "up", "--home", str(home), "--port", "0", "--preset", "tiny_cnn",
               "--quiet-period", str(args.quiet_period), "--min-accuracy", "0", "--min-test-images", "0", "--quantize", "fp32",
               "-H", "image_size=32", "-H", "epochs=1", "-H", "head_epochs=2", "-H", "batch_size=8", "-H", "min_images_per_class=2"]
    up = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    photo = sorted((PHOTOS / "roses").glob("*.jpg"))[60].read_bytes()
    rows = []
    try:
        server = home / "server.json"
        url = wait(lambda: server.exists() and json.loads(server.read_text())["url"], 60, "server", 0.05)
        db = sqlite3.connect(f"file:{home / 'state.sqlite3'}?mode=ro", uri=True)
        served = ""
        for run in range(args.runs):
            classes = CLASSES if run == 0 else NEW_CLASS[run - 1 : run]
            last_upload = write_photos(home / "bucket", classes, per_class=args.per_class)

            def training_started():
                status = call(url + "status")[1]
                job = status.get("running_job") or {}
                return (job.get("progress") or {}).get("process_started_epoch") if job.get("stage") == "training" else None

            started = wait(training_started, 60, "training start")
            to_training = started - last_upload - args.quiet_period

            def new_answer():
                status, body = call(url + "predict", photo)
                version = (body or {}).get("model", {}).get("version") if status == 200 else ""
                return (time.time(), version) if version and version != served else None

            answered_at, version = wait(new_answer, 300, "an answer from the new model")
            ended = db.execute("SELECT ended_at FROM jobs WHERE kind = 'conversion' AND name LIKE ?", (f"%{version}-convert",)).fetchone()[0]
            to_answer = answered_at - ended
            rows.append((run + 1, version, to_training, to_answer))
            served = version
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(20)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()
    print(f"local pipeline overhead (tiny_cnn, quiet period {args.quiet_period}s, {args.per_class} photos/class/run; target <= {TARGET_SECONDS:.0f}s)")
    print(f"{'run':>3}  {'model':16}  {'upload->training start beyond quiet':>36}  {'conversion done->first answer':>30}")
    ok = True
    for run, version, to_training, to_answer in rows:
        ok &= to_training <= TARGET_SECONDS and to_answer <= TARGET_SECONDS
        print(f"{run:>3}  {version:16}  {to_training:>35.2f}s  {to_answer:>29.2f}s")
    print("PASS" if ok else "FAIL", f"(log: {work / 'up.log'})")
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
