"""`make demo`: the ML core end to end on one machine, no AWS account.

Trains the local default preset on a photo folder exactly as a SageMaker job would (same
entrypoint, SM_* folders under out/demo/), converts the model to a verified `.tflite`,
then answers a few predictions with LiteRT the way the prediction function does.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from chalicelib.imaging import has_image_extension, load_pixels
from training import convert as cv
from training import train
from training.environment import JobEnvironment
from training.hyperparameters import parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a data set folder (folder per class or name.jpg + name.txt)")
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--preset", default="mobilenet_v2")
    parser.add_argument("--max-training-time", type=int, default=900)
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"ERROR: no data set at {args.data}. Point --data (or make demo DATA=...) at a folder of labelled photos.", file=sys.stderr)
        return 2

    out = args.out.resolve()
    env = JobEnvironment.from_env({
        "SM_INPUT_CONFIG_DIR": str(out / "config"), "SM_CHANNEL_TRAINING": str(args.data.resolve()),
        "SM_MODEL_DIR": str(out / "model"), "SM_OUTPUT_DIR": str(out / "output"),
        "SM_CHECKPOINT_DIR": str(out / "checkpoints"), "TRAINING_JOB_NAME": "demo",
    })
    started = time.monotonic()
    try:
        hp = parse({"preset": args.preset, "max_training_time": args.max_training_time})
        train.run(env, hp)
        meta = cv.convert(env.model_dir, out / "tflite", args.data, quantize="auto")
    except Exception as exc:  # the demo's whole point is a readable outcome
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1

    metrics = meta["metrics"]
    print("\n== flowers demo")
    print(f"data set {args.data} (version {meta['dataset_version']}): {meta['dataset_counts']}")
    print(f"trained {meta['preset']} in {meta['training']['seconds']['total']:.0f}s; converted in {meta['conversion']['seconds']:.0f}s")
    print(f"test top-1: SavedModel {metrics['saved_model_test_accuracy']:.3f}, "
          f"model.tflite ({meta['quantization']}, {meta['model']['size_bytes'] / 1e6:.1f} MB) {metrics['test']['accuracy']:.3f}")
    for label, values in metrics["test"]["per_class"].items():
        print(f"  {label:12s} precision {values['precision']:.3f}  recall {values['recall']:.3f}  ({values['support']} photos)")
    photos = [p for p in sorted(args.data.rglob("*")) if has_image_extension(p.name)][::max(1, meta["dataset_counts"]["train"] // 3)][:5]
    batch = np.stack([load_pixels(p.read_bytes(), meta["image_size"]).pixels for p in photos]).astype(np.float32)
    probabilities = cv.tflite_predict(str(out / "tflite" / "model.tflite"), batch)
    print("predictions with LiteRT:")
    for photo, row in zip(photos, probabilities):
        best = int(row.argmax())
        print(f"  {photo.relative_to(args.data)}: {meta['labels'][best]} ({row[best]:.2f})")
    print(f"\nmodel: {out / 'tflite' / 'model.tflite'}\nTensorBoard: tensorboard --logdir {env.tensorboard_dir}")
    print(f"total {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
