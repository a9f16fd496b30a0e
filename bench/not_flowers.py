""""Not a flower": how a converted model's threshold (and optional `other` class) refuses photos.

Measured with the served model.tflite on LiteRT and the server's own pixels and rule
(chalicelib.contract.imaging.load_pixels, chalicelib.serving.predictor.decide):

- flower photos: the data set's test split (the same hash split training used), and every photo of
  flower_photos_eval (never trained on): share refused, top-1, accuracy on the accepted ones,
  ECE (15 bins) before and after temperature scaling;
- /work/shared/datasets/not_flowers (185 photos that are none of the classes): share refused, by
  category. When the model has an `other` class trained on some of them, only the ones it did not
  train on count (the test split; validation + test also shown).

Goals: >= 80 % of non-flower photos refused while <= 5 % of flower photos are; ECE <= 0.05.

    python bench/not_flowers.py CONVERTED_DIR [--data FLOWERS] [--eval FLOWERS_EVAL] [--not-flowers DIR]
    python bench/not_flowers.py WORK --train [--with-other]   # train + convert first (mobilenet_v2, ~6 min)
    python bench/not_flowers.py ... --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
sys.path[:0] = [str(ROOT)]

from chalicelib.contract.imaging import ImageError, load_pixels  # noqa: E402
from chalicelib.serving.predictor import decide, top  # noqa: E402
from training import calibration  # noqa: E402
from training import dataset as ds  # noqa: E402
from training.convert import calibration_metrics, tflite_predict  # noqa: E402  (LiteRT only)

GOAL_NOT_FLOWERS, GOAL_FLOWERS, GOAL_ECE = 0.80, 0.05, 0.05


def train(work: Path, data: Path, with_other: Path | None, preset: str | None = None) -> Path:
    """Train (default hyperparameters, or another preset's) and convert (auto) into WORK; the converted folder."""
    if with_other is not None:  # the flower folders + not_flowers as the `other` class
        combined = work / "data"
        if not combined.exists():
            for label in sorted(p.name for p in data.iterdir() if p.is_dir()):
                shutil.copytree(data / label, combined / label)
            (combined / calibration.OTHER).mkdir()
            for photo in sorted(with_other.glob("*.jpg")):
                shutil.copyfile(photo, combined / calibration.OTHER / photo.name)
        data = combined
    (work / "config").mkdir(parents=True, exist_ok=True)
    (work / "config" / "hyperparameters.json").write_text(json.dumps({"preset": preset} if preset else {}))
    env = dict(os.environ, SM_INPUT_CONFIG_DIR=str(work / "config"), SM_CHANNEL_TRAINING=str(data),
               SM_MODEL_DIR=str(work / "model"), SM_OUTPUT_DIR=str(work / "output"),
               SM_OUTPUT_DATA_DIR=str(work / "output" / "data"), SM_CHECKPOINT_DIR=str(work / "checkpoints"),
               TRAINING_JOB_NAME="bench-not-flowers", KERAS_HOME=os.environ.get("KERAS_HOME", str(ROOT / ".keras")),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    for command in ([sys.executable, "-m", "training.train"],
                    [sys.executable, "-m", "training.convert", str(work / "model"), str(work / "converted"), "--data", str(data)]):
        subprocess.run(command, cwd=ROOT, env=env, check=True)
    return work / "converted"


def pixels_of(paths: list[Path], size: int) -> np.ndarray:
    out = []
    for path in paths:
        try:
            out.append(load_pixels(path.read_bytes(), size).pixels)
        except ImageError:
            continue
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


def flower_set(root: Path, labels: list[str], size: int, splits: tuple[str, ...] | None,
               fractions: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Pixels and class indices of the photos of the model's classes (`other` excepted) in `splits` (None: all)."""
    found = ds.scan(root)
    chosen = [e for e in found.examples if e.label in labels and e.label != calibration.OTHER
              and (splits is None or ds.split_of(e.sha256, fractions) in splits)]
    chosen.sort(key=lambda e: e.path)
    kept, pixels, _ = ds.decode(found.root, chosen, size)
    images = np.stack(pixels) if pixels else np.zeros((0, size, size, 3), np.uint8)
    return images, np.array([labels.index(e.label) for e in kept], int)


def answers(probabilities: np.ndarray, labels: list[str], threshold: float | None) -> np.ndarray:
    """True where the server answers `label: null`, by its own rule on the scores it shows."""
    return np.array([decide(top(p, labels, 1), threshold) is None for p in probabilities], bool)


def flower_figures(probabilities: np.ndarray, truth: np.ndarray, labels: list[str], threshold: float | None,
                   metadata: dict) -> dict:
    refused = answers(probabilities, labels, threshold)
    correct = probabilities.argmax(axis=1) == truth
    ece = calibration_metrics(probabilities, truth, metadata)  # as the conversion reports it
    return {"count": int(len(truth)), "refused": float(refused.mean()), "top1": float(correct.mean()),
            "accuracy_accepted": float(correct[~refused].mean()) if (~refused).any() else None,
            "ece_before": ece["ece_uncalibrated"], "ece_after": ece["ece"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a converted model folder (model.tflite + metadata.json), or WORK with --train")
    parser.add_argument("--train", action="store_true", help="train and convert into MODEL first")
    parser.add_argument("--with-other", action="store_true", help="with --train: not_flowers as an `other` class")
    parser.add_argument("--preset", help="with --train: a preset other than the default (tiny_cnn: a quick check)")
    parser.add_argument("--data", type=Path, default=SHARED / "flower_photos")
    parser.add_argument("--eval", type=Path, default=SHARED / "flower_photos_eval")
    parser.add_argument("--not-flowers", type=Path, default=SHARED / "not_flowers")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    folder = args.model
    if args.train:
        folder = train(args.model, args.data, args.not_flowers if args.with_other else None, args.preset)
    data = args.data if not (folder.parent / "data").is_dir() else folder.parent / "data"
    report = measure(folder, data, args.eval, args.not_flowers)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def measure(folder: Path, data: Path, eval_dir: Path, not_flowers: Path) -> dict:
    """The figures of one converted model folder: flower photos (test split of `data`, all of `eval_dir`) and
    non-flower photos refused, by the server's rule on the served model.tflite."""
    meta = json.loads((folder / "metadata.json").read_text())
    labels, size = list(meta["labels"]), int(meta["image_size"])
    threshold = meta.get("threshold") if isinstance(meta.get("threshold"), (int, float)) else None
    temperature = float((meta.get("calibration") or {}).get("temperature") or 1.0)
    fractions = tuple(meta.get("hyperparameters", {}).get("splits", (0.8, 0.1, 0.1)))
    model = str(folder / "model.tflite")
    report: dict = {"model": str(folder), "preset": meta.get("preset"), "quantization": meta.get("quantization"),
                    "labels": labels, "threshold": threshold, "temperature": temperature, "flowers": {}}

    top_scores = {}  # each flower set's top scores, for the threshold that would refuse 80 % of the non-flowers
    for name, root, splits in (("test split", data, ("test",)), ("flower_photos_eval", eval_dir, None)):
        if root.is_dir():
            images, truth = flower_set(root, labels, size, splits, fractions)
            probabilities = tflite_predict(model, images)
            report["flowers"][name] = flower_figures(probabilities, truth, labels, threshold, meta)
            top_scores[name] = probabilities.max(axis=1)

    paths = sorted(not_flowers.glob("*.jpg"))
    if calibration.OTHER in labels:  # photos the model trained on as `other` do not count
        trained_on = ds.scan(data).examples
        by_name = {e.path.split("/")[-1]: ds.split_of(e.sha256, fractions) for e in trained_on if e.label == calibration.OTHER}
        sets = {"test split": [p for p in paths if by_name.get(p.name) == "test"],
                "validation + test": [p for p in paths if by_name.get(p.name) in ("validation", "test")]}
    else:
        sets = {"all": paths}
    report["not_flowers"] = {}
    flower_scores = next(iter(top_scores.values()), None)  # the test split's, else the evaluation set's
    for name, chosen in sets.items():
        probabilities = tflite_predict(model, pixels_of(chosen, size))
        refused = answers(probabilities, labels, threshold)
        by_threshold = answers(probabilities, [label if label != calibration.OTHER else "_" for label in labels], threshold)
        categories: dict[str, list[bool]] = {}
        for path, r in zip(chosen, refused):
            categories.setdefault(path.name.split("_")[0], []).append(bool(r))
        figures = {"count": len(chosen), "refused": float(refused.mean()) if len(chosen) else None,
                   "refused_by_threshold_alone": float(by_threshold.mean()) if len(chosen) else None,
                   "by_category": {c: round(float(np.mean(v)), 3) for c, v in sorted(categories.items())}}
        if flower_scores is not None and len(chosen) and calibration.OTHER not in labels:
            # the threshold that would refuse 80 % of these, and what it would cost on the flower photos
            needed = float(np.quantile(probabilities.max(axis=1), GOAL_NOT_FLOWERS))
            figures["threshold_for_80_percent"] = needed
            figures["flowers_refused_at_that_threshold"] = float((flower_scores < needed).mean())
        report["not_flowers"][name] = figures
    return report


if __name__ == "__main__":
    sys.exit(main())
