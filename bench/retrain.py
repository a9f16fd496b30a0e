"""Incremental retraining (issue 21): train on 95 % of the shared photos, add the other 5 % and retrain
incrementally, and compare with a from-scratch run on all of them, in the same bench run, per seed.

The 5 % "new" photos are chosen by a hash of each photo's content (sha256 % 100 < 5). Each run is a real
`python -m training.train` job in a subprocess, with the folders and variables the local job runner gives
it (chalicelib/adapters/local/jobs.py):

1. base: the 95 %, from ImageNet, writing the feature cache (a fresh folder per seed);
2. incremental: all photos, warm-started from the base model (SM_CHANNEL_PRODUCTION and FLOWERS_START_FROM,
   as the pipeline passes them), with the same feature cache;
3. scratch: all photos, from ImageNet, no cache (today's run).

Wall time of the whole job (process start to exit), and test top-1 from each model's metadata.json: the
test split is chosen by content hash, so incremental and scratch are scored on the same test photos.
Goals: incremental <= 40 % of scratch's wall time, and within 0.5 point of its test top-1. One test photo
is 0.62 point, so both models are also scored on the evaluation set (`--eval`, 1,000 photos no run trains
on), outside the timed jobs.

    python bench/retrain.py ../shared/datasets/flower_photos --seeds 1337,7,11
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))
from chalicelib.contract.feature_cache import FOLDER_ENV  # noqa: E402
from chalicelib.contract.warm_start import START_FROM_ENV, StartFrom  # noqa: E402

PHOTO = (".jpg", ".jpeg", ".png")


def split_by_content(data: Path, work: Path, share: int) -> tuple[Path, Path, int]:
    """(the 95 % folder, the 100 % folder, how many photos are new), hard links (copies across file systems)."""
    old, everything, new = work / "data95", work / "data100", 0
    for photo in sorted(p for p in data.rglob("*") if p.suffix.lower() in PHOTO):
        relative = photo.relative_to(data)
        late = int(hashlib.sha256(photo.read_bytes()).hexdigest(), 16) % 100 < share
        targets = [everything] if late else [old, everything]
        new += late
        for target in targets:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(photo, target / relative)
            except OSError:
                shutil.copyfile(photo, target / relative)
    return old, everything, new


def job(work: Path, data: Path, hyperparameters: dict[str, str], extra: dict[str, str]) -> tuple[float, dict]:
    shutil.rmtree(work, ignore_errors=True)
    (work / "config").mkdir(parents=True)
    (work / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    env = dict(os.environ, SM_INPUT_CONFIG_DIR=str(work / "config"), SM_CHANNEL_TRAINING=str(data),
               SM_MODEL_DIR=str(work / "model"), SM_OUTPUT_DIR=str(work / "output"),
               SM_OUTPUT_DATA_DIR=str(work / "output" / "data"), SM_CHECKPOINT_DIR=str(work / "checkpoints"),
               FLOWERS_TENSORBOARD_DIR=str(work / "tensorboard"), TRAINING_JOB_NAME=work.name, PYTHONPATH=str(ROOT),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", **extra)
    started = time.monotonic()
    with open(work / "log.txt", "w") as log:
        done = subprocess.run([sys.executable, "-m", "training.train"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    took = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{work.name} failed:\n{(work / 'log.txt').read_text()[-3000:]}")
    metadata = json.loads((work / "model" / "metadata.json").read_text())
    cache_line = next((line for line in (work / "log.txt").read_text().splitlines() if line.startswith("feature cache:")), "")
    print(f"  {work.name:<12} {took:7.1f} s  test top-1 {100 * metadata['metrics']['test']['accuracy']:.2f} %  "
          f"start {metadata['training']['start_from']['kind']}  {cache_line}", flush=True)
    return took, metadata


def evaluation_top1(model: Path, eval_dir: Path) -> float | None:
    """The SavedModel's top-1 on the evaluation set (bench/train.py's loader); None without the folder."""
    if not eval_dir.is_dir():
        return None
    from train import evaluation_set  # bench/train.py

    from training import convert as cv

    metadata = json.loads((model / "metadata.json").read_text())
    images, truth = evaluation_set(eval_dir, metadata["labels"], metadata["image_size"])
    return float((cv.saved_model_predict(model / "saved_model", images.astype("float32")).argmax(1) == truth).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--seeds", default="1337,7,11")
    parser.add_argument("--preset", default="mobilenet_v2")
    parser.add_argument("--share", type=int, default=5, help="per cent of the photos added for the incremental run")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("-H", action="append", default=[], metavar="KEY=VALUE", help="extra hyperparameters for every run")
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "datasets" / "flower_photos_eval",
                        help="the evaluation set (photos no run trains on); a missing folder skips it")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "retrain.json")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="retrain-"))
    old, everything, new = split_by_content(args.data.resolve(), work, args.share)
    print(f"{new} of the photos are new ({args.share} % by content hash); work in {work}", flush=True)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        hp = dict(preset=args.preset, seed=str(seed), **dict(item.split("=", 1) for item in args.H))
        cache = work / f"features-{seed}"
        shutil.rmtree(cache, ignore_errors=True)
        print(f"seed {seed}", flush=True)
        base_s, base = job(work / f"base-{seed}", old, hp, {FOLDER_ENV: str(cache)})
        decision = StartFrom("production", "bench: same classes as the base model", 1, "base", str(work / f"base-{seed}" / "model"))
        inc_s, inc = job(work / f"incr-{seed}", everything, hp, {FOLDER_ENV: str(cache), START_FROM_ENV: decision.as_json(),
                                                                  "SM_CHANNEL_PRODUCTION": str(work / f"base-{seed}" / "model")})
        scratch_s, scratch = job(work / f"scratch-{seed}", everything, hp, {})
        row = {"seed": seed, "base_s": round(base_s, 1), "incremental_s": round(inc_s, 1), "scratch_s": round(scratch_s, 1),
               "time_share": round(inc_s / scratch_s, 3),
               "incremental_top1": inc["metrics"]["test"]["accuracy"], "scratch_top1": scratch["metrics"]["test"]["accuracy"],
               "test_photos": inc["metrics"]["test"].get("count"), "incremental_start": inc["training"]["start_from"],
               "incremental_laps": inc["training"]["seconds"], "scratch_laps": scratch["training"]["seconds"]}
        row["top1_gap_points"] = round(100 * (row["incremental_top1"] - row["scratch_top1"]), 2)
        row["incremental_eval_top1"] = evaluation_top1(work / f"incr-{seed}" / "model", args.eval)
        row["scratch_eval_top1"] = evaluation_top1(work / f"scratch-{seed}" / "model", args.eval)
        if row["incremental_eval_top1"] is not None:
            row["eval_gap_points"] = round(100 * (row["incremental_eval_top1"] - row["scratch_eval_top1"]), 2)
            print(f"  evaluation set: incremental {100 * row['incremental_eval_top1']:.2f} % vs scratch "
                  f"{100 * row['scratch_eval_top1']:.2f} % ({row['eval_gap_points']:+.2f} points)", flush=True)
        rows.append(row)
        print(f"  incremental {inc_s:.1f} s = {100 * row['time_share']:.1f} % of scratch {scratch_s:.1f} s; "
              f"top-1 {100 * row['incremental_top1']:.2f} vs {100 * row['scratch_top1']:.2f} ({row['top1_gap_points']:+.2f} points)",
              flush=True)
    summary = {"seeds": len(rows), "time_share_mean": round(statistics.mean(r["time_share"] for r in rows), 3),
               "top1_gap_points_mean": round(statistics.mean(r["top1_gap_points"] for r in rows), 2)}
    if all("eval_gap_points" in r for r in rows):
        summary["eval_gap_points_mean"] = round(statistics.mean(r["eval_gap_points"] for r in rows), 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"preset": args.preset, "new_photos": new, "share": args.share, "cpus": os.cpu_count(),
                                    "summary": summary, "runs": rows}, indent=2) + "\n")
    print(f"summary: {summary}; wrote {args.out}")


if __name__ == "__main__":
    main()
