"""Ensembles of kept models on the evaluation set: what averaging two phone models' scores buys, and its cost.

    python bench/ensemble.py KEEP [--eval DIR] [--seeds 1337,7,11]

KEEP is `bench/train.py --keep`'s folder (KEEP/PRESET/seed-N/tflite/model.tflite). For each seed, every preset's
kept `.tflite` scores the evaluation photos (LiteRT, the served scores); then each pair of presets, and each
preset with its left-right mirror image (test-time flip), is scored by the mean of the two score vectors.
A pair costs both models per prediction: the ms column adds the two models' medians (bench/train.py's
prediction_ms), the flip doubles one. Writes bench/results/ensemble.json.
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from train import evaluation_set, prediction_ms  # noqa: E402

from training.convert import tflite_predict  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("keep", type=Path)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "datasets" / "flower_photos_eval")
    parser.add_argument("--seeds", default="1337,7,11")
    args = parser.parse_args()

    presets = sorted(p.name for p in args.keep.iterdir() if p.is_dir())
    rows: dict[str, list[float]] = {}
    cost: dict[str, float] = {}
    for seed in args.seeds.split(","):
        scores, truth = {}, None
        for preset in presets:
            folder = args.keep / preset / f"seed-{seed}" / "tflite"
            if not (folder / "model.tflite").is_file():
                continue
            meta = json.loads((folder / "metadata.json").read_text())
            images, labels = evaluation_set(args.eval, list(meta["labels"]), int(meta["image_size"]))
            if truth is not None and not np.array_equal(truth, labels):
                raise SystemExit(f"{preset}: the evaluation photos differ between models")
            truth = labels
            model = str(folder / "model.tflite")
            scores[preset] = tflite_predict(model, images)
            flipped = tflite_predict(model, images[:, :, ::-1, :])
            ms = prediction_ms(folder / "model.tflite", int(meta["image_size"]))
            rows.setdefault(preset, []).append(float((scores[preset].argmax(1) == truth).mean()))
            rows.setdefault(f"{preset} + flip", []).append(float(((scores[preset] + flipped).argmax(1) == truth).mean()))
            cost[preset], cost[f"{preset} + flip"] = ms, 2 * ms
        for a, b in itertools.combinations(sorted(scores), 2):
            name = f"{a} + {b}"
            rows.setdefault(name, []).append(float(((scores[a] + scores[b]).argmax(1) == truth).mean()))
            cost[name] = cost[a] + cost[b]
    print("| models | evaluation top-1 per seed | mean (sd) | LiteRT ms per prediction |\n| --- | --- | --- | --- |")
    for name, tops in sorted(rows.items(), key=lambda item: -statistics.mean(item[1])):
        sd = statistics.stdev(tops) if len(tops) > 1 else 0.0
        print(f"| {name} | {' / '.join(f'{t:.3f}' for t in tops)} | {statistics.mean(tops):.3f} ({sd:.3f}) | {cost[name]:.1f} |")
    out = ROOT / "bench" / "results" / "ensemble.json"
    out.write_text(json.dumps({"seeds": args.seeds, "top1": rows, "ms": cost}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
