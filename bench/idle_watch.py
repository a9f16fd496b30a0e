"""What `flowers up` costs at rest, and how soon it sees an upload, with FLOWERS_WATCH=poll (a full rescan of the
bucket every 0.5 s, as before issue 21) and FLOWERS_WATCH=notify (file-system notifications, a slow rescan
as the safety net), in the same run on the same homes.

For each size (default 3,000 and 100,000 files: small generated .jpg files in 5 class folders, as many as
the shared data set's 1,500 photos and labels and 33 times that), one home is filled and ingested once (the
first start delivers every file to on_upload; the quiet period is a week, so no run starts). Then for
each mode a real `flowers up` (python -m flowers_cli.main up) is started on that home and left alone:

- idle CPU: the process's user+system CPU seconds (/proc/PID/stat) over --idle seconds, after --settle
  seconds, as a share of one core; everything it does at rest (the scheduled tick twice a second included);
- upload-to-delivery latency: --uploads new photos written one at a time at a random moment, each timed
  from its write to its row in the watcher's SQLite table (recorded after on_upload took it: the moment the
  cloud's S3 -> SQS notification arrives). A run then starts after the quiet period, as before.

    python bench/idle_watch.py                         # 3,000 and 100,000 files, both modes
    python bench/idle_watch.py --sizes 3000 --idle 20  # quicker
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from local_fixtures import cli_env  # noqa: E402

CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")
TICKS = os.sysconf("SC_CLK_TCK")


def fill(bucket: Path, count: int) -> None:
    for index in range(count):
        folder = bucket / CLASSES[index % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"generated_{index:06d}.jpg").write_bytes(b"\xff\xd8\xff" + index.to_bytes(4, "big"))


class Up:
    def __init__(self, home: Path, mode: str):
        self.home = home
        env = dict(cli_env(home), FLOWERS_WATCH=mode)
        self.log_path = home.parent / f"up-{mode}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w")
        (home / "server.json").unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "flowers_cli.main", "up", "--home", str(home), "--port", "0",
                                      "--quiet-period", "604800"], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 1800
        while not (home / "server.json").exists():  # written after the first scan delivered everything
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"flowers up did not start:\n{self.log_path.read_text()[-4000:]}")
            time.sleep(0.2)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def recorded(db: Path, key: str) -> bool:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute("SELECT 1 FROM objects WHERE key = ?", (key,)).fetchone() is not None


def latencies(home: Path, uploads: int, tag: str) -> list[float]:
    db, found = home / "state.sqlite3", []
    for index in range(uploads):
        time.sleep(random.uniform(0.5, 1.5))  # a random phase against any polling period
        key = f"roses/upload_{tag}_{index:03d}.jpg"
        part = home / "bucket" / "roses" / f".upload_{tag}_{index:03d}.jpg.part"
        part.write_bytes(b"\xff\xd8\xff" + os.urandom(64))
        started = time.monotonic()
        part.rename(home / "bucket" / key)  # as `flowers push` and the web page's upload do: a complete file appears
        while not recorded(db, key):
            if time.monotonic() - started > 120:
                raise TimeoutError(f"{key} not delivered in 120 s")
            time.sleep(0.005)
        found.append(time.monotonic() - started)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3000,100000")
    parser.add_argument("--modes", default="poll,notify")
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "idle_watch.json")
    args = parser.parse_args()
    random.seed(21)
    work = args.work or Path(tempfile.mkdtemp(prefix="idle-watch-"))
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        home = work / f"home-{size}"
        fill(home / "bucket", size)
        started = time.monotonic()
        Up(home, "notify").stop()  # ingest: every file delivered once, so the measured starts find nothing new
        print(f"{size} files: generated and ingested in {time.monotonic() - started:.1f} s", flush=True)
        for mode in args.modes.split(","):
            up = Up(home, mode)
            try:
                time.sleep(args.settle)
                before, t0 = up.cpu_seconds(), time.monotonic()
                time.sleep(args.idle)
                idle = (up.cpu_seconds() - before) / (time.monotonic() - t0)
                waits = latencies(home, args.uploads, mode)
            finally:
                up.stop()
            row = {"files": size, "mode": mode, "idle_cpu_share_of_a_core": round(idle, 4), "idle_seconds": args.idle,
                   "latency_median_s": round(statistics.median(waits), 3), "latency_max_s": round(max(waits), 3),
                   "uploads": len(waits)}
            results.append(row)
            print(f"{size:>7} files  {mode:<6}  idle {100 * idle:5.1f} % of a core   upload->on_upload median "
                  f"{row['latency_median_s']:.3f} s, max {row['latency_max_s']:.3f} s ({len(waits)} uploads)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
