"""Label-noise benchmark: does a run find the photos whose labels were flipped, and what does it cost?

    python bench/label_noise.py DATASET_DIR [--flip 0.05] [--seed 20] [-H KEY=VALUE ...]

Copies the data set (one folder per class) with `--flip` of its photos, chosen at random with
`--seed`, moved into another class's folder (chosen at random too), trains it with the default
recipe (mobilenet_v2 unless -H says otherwise) in this process, and reads the run's
validation.json: precision and recall of its flagged list against the flipped set, both for the
whole list and for its top-ranked flags as many as were flipped (the goal: recall >= 70 % with
precision >= 50 %), the seconds the label-issue step added (metadata.json's
training.seconds.label_issues) against the rest of the run, and the flags among the photos left
alone: the original photos of DATASET_DIR the run suspects (for the README's example).
Writes the figures to bench/results/label_noise.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from chalicelib.contract.training_job import METADATA_FILE, VALIDATION_REPORT  # noqa: E402
from training import train  # noqa: E402
from training.environment import JobEnvironment  # noqa: E402
from training.hyperparameters import parse  # noqa: E402


def flipped_copy(data: Path, out: Path, share: float, seed: int) -> dict[str, str]:
    """Copy `data` to `out`, `share` of its photos into another class's folder. Returns {new path: original path}."""
    classes = sorted(p.name for p in data.iterdir() if p.is_dir())
    photos = sorted(f"{c}/{f.name}" for c in classes for f in (data / c).iterdir() if f.is_file())
    rng = random.Random(seed)
    chosen = set(rng.sample(photos, round(share * len(photos))))
    flipped = {}
    for photo in photos:
        label, name = photo.split("/", 1)
        if photo in chosen:
            label = rng.choice([c for c in classes if c != label])
            flipped[f"{label}/{name}"] = photo
        (out / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data / photo, out / label / name)
    return flipped


def score(issues: list[dict], flipped: set[str]) -> dict[str, float | int]:
    hits = sum(1 for issue in issues if issue["file"] in flipped)
    return {"flagged": len(issues), "hits": hits, "precision": hits / len(issues) if issues else 0.0,
            "recall": hits / len(flipped) if flipped else 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--flip", type=float, default=0.05, help="share of the photos given another label")
    parser.add_argument("--seed", type=int, default=20, help="which photos, and which wrong labels")
    parser.add_argument("-H", dest="hyperparameters", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "label_noise.json")
    args = parser.parse_args(argv)
    hp = parse(dict(item.split("=", 1) for item in args.hyperparameters))

    with tempfile.TemporaryDirectory(prefix="bench-label-noise-") as tmp:
        work = Path(tmp)
        flipped = flipped_copy(args.data, work / "data", args.flip, args.seed)
        env = JobEnvironment.from_env({
            "SM_INPUT_CONFIG_DIR": str(work / "config"), "SM_CHANNEL_TRAINING": str(work / "data"),
            "SM_MODEL_DIR": str(work / "model"), "SM_OUTPUT_DIR": str(work / "output"),
            "SM_OUTPUT_DATA_DIR": str(work / "output" / "data"),
            "SM_CHECKPOINT_DIR": str(work / "checkpoints"), "TRAINING_JOB_NAME": "bench-label-noise"})
        started = time.monotonic()
        train.run(env, hp, started)
        report = json.loads((work / "output" / "data" / VALIDATION_REPORT).read_text())
        metadata = json.loads((work / "model" / METADATA_FILE).read_text())

    found = report["label_issues"]
    issues = found["issues"]
    seconds = metadata["training"]["seconds"]
    extra = float(seconds.get("label_issues", 0.0))
    total = float(seconds["total"])
    originals = [dict(issue, file=issue["file"]) for issue in issues if issue["file"] not in flipped]
    result = {
        "data": str(args.data), "preset": hp.preset, "photos": found["photos"], "flip": args.flip, "seed": args.seed,
        "flipped": len(flipped), "listed": len(issues), "count": found["count"],
        "out_of_fold_accuracy": found.get("out_of_fold_accuracy"),
        "all_flags": score(issues, set(flipped)),
        "top_flags": score(issues[: len(flipped)], set(flipped)),
        "seconds": {"label_issues": extra, "total": total, "rest": round(total - extra, 1),
                    "slowdown_percent": round(100 * extra / (total - extra), 2) if total > extra else None,
                    "laps": seconds},
        "test_accuracy": metadata["metrics"]["test"]["accuracy"],
        "flagged_originals": originals,  # photos left alone that the run suspects: their labels as in DATA
        "missed": sorted(set(flipped) - {issue["file"] for issue in issues}),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    top, every = result["top_flags"], result["all_flags"]
    print(f"{len(flipped)} of {found['photos']} photos flipped (seed {args.seed}); {found['count']} flagged")
    print(f"top {len(flipped)} flags: precision {100 * top['precision']:.1f} %  recall {100 * top['recall']:.1f} %")
    print(f"all flags:     precision {100 * every['precision']:.1f} %  recall {100 * every['recall']:.1f} %")
    print(f"label issues took {extra:.1f} s of a {total:.1f} s run (+{result['seconds']['slowdown_percent']} %)")
    print(f"original photos flagged ({len(originals)}):")
    for issue in originals:
        print(f"  {issue['file']}: labelled {issue['given']}, looks like {issue['suggested']} "
              f"({100 * issue['confidence']:.0f} %)")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
