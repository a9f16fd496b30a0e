"""Proof that a refactor left training alone: run `python -m training.train` on six configurations and
print one fingerprint per configuration, so two checkouts' outputs can be compared line by line.

    python bench/training_fingerprint.py --out build/fingerprint-before.json       # on the old checkout
    python bench/training_fingerprint.py --out build/fingerprint-after.json        # on the new one
    python bench/training_fingerprint.py --compare build/fingerprint-before.json build/fingerprint-after.json

Each configuration is a real training job on real photos (../shared/datasets/flower_photos, 12 per class)
in a subprocess, as SageMaker and local mode run it: mobilenet_v2 at 96 px (the offline ImageNet weights),
tiny_cnn, a restarted job that resumes phase 1 from its checkpoint, a warm start from the first model,
MirroredStrategy over two CPU devices, and a head-only run. Compared: stdout, metadata.json and
validation.json (wall-clock figures and timestamps removed: they differ between any two runs), the sha256
of every weight of model.keras, and every TensorBoard scalar/tensor (tag, step, value), wall times left out.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT.parent / "shared" / "datasets" / "flower_photos"
SMALL = {"epochs": 2, "head_epochs": 3, "batch_size": 8, "patience": 5}
CONFIGS: dict[str, dict[str, Any]] = {
    "mobilenet_v2_96": {"hp": dict(SMALL, preset="mobilenet_v2", image_size=96)},
    "tiny_cnn": {"hp": dict(SMALL, preset="tiny_cnn", image_size=32)},
    "resume": {"hp": dict(SMALL, preset="tiny_cnn", image_size=32), "resume": True},
    "warm_start": {"hp": dict(SMALL, preset="mobilenet_v2", image_size=96), "warm_from": "mobilenet_v2_96"},
    "mirrored": {"hp": dict(SMALL, preset="tiny_cnn", image_size=32), "env": {"FLOWERS_CPU_DEVICES": "2"}},
    "head_only": {"hp": dict(SMALL, preset="tiny_cnn", image_size=32, epochs=0)},
}
# Figures that differ between any two runs of the same code: wall-clock seconds and timestamps.
VOLATILE_KEYS = {"seconds", "created_at"}
VOLATILE_STDOUT = [(re.compile(r"(\bdecode_seconds=|\bseconds=)[0-9.]+"), r"\1X"), (re.compile(r"( in )[0-9.]+s$"), r"\1Xs")]
TEMPORARY = re.compile(r"/tmp/[^ ]*")  # each run's own folders


def photos(root: Path, per_class: int = 12) -> Path:
    for folder in sorted(p for p in PHOTOS.iterdir() if p.is_dir()):
        (root / folder.name).mkdir(parents=True)
        for photo in sorted(folder.glob("*.jpg"))[:per_class]:
            shutil.copy(photo, root / folder.name / photo.name)
    return root


def train(job: Path, data: Path, hp: dict[str, Any], extra: dict[str, str]) -> str:
    config = job / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hp.items()}))
    env = dict(os.environ, SM_INPUT_CONFIG_DIR=str(config), SM_CHANNEL_TRAINING=str(data),
               SM_MODEL_DIR=str(job / "model"), SM_OUTPUT_DIR=str(job / "output"),
               SM_OUTPUT_DATA_DIR=str(job / "output" / "data"), SM_CHECKPOINT_DIR=str(job / "checkpoints"),
               TRAINING_JOB_NAME="fingerprint", PYTHONPATH=str(ROOT), **extra)
    done = subprocess.run([sys.executable, "-m", "training.train"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    if done.returncode:
        raise SystemExit(f"training failed in {job}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("X" if k in VOLATILE_KEYS else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return TEMPORARY.sub("TMP", value) if isinstance(value, str) else value


def stdout_lines(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        for pattern, repl in VOLATILE_STDOUT:
            line = pattern.sub(repl, line)
        lines.append(TEMPORARY.sub("TMP", line))
    return lines


def weights(model_dir: Path) -> list[str]:
    import keras

    from training.presets import custom_objects

    model = keras.saving.load_model(model_dir / "model.keras", custom_objects=custom_objects(), compile=False)
    return [hashlib.sha256(w.tobytes()).hexdigest() for w in model.get_weights()]


def events(folder: Path) -> list[list[Any]]:
    import tensorflow as tf

    rows = []
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                content = value.tensor.SerializeToString() if value.HasField("tensor") else repr(value.simple_value)
                rows.append([path.parent.name, value.tag, int(event.step), hashlib.sha256(
                    content if isinstance(content, bytes) else content.encode()).hexdigest()[:16]])
    return rows


def fingerprint(job: Path, out: str) -> dict[str, Any]:
    return {
        "stdout": stdout_lines(out),
        "metadata": scrub(json.loads((job / "model" / "metadata.json").read_text())),
        "validation": scrub(json.loads((job / "output" / "data" / "validation.json").read_text())),
        "weights": weights(job / "model"),
        "tensorboard": events(job / "output" / "data" / "tensorboard"),
    }


def run_all(names: list[str]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="fingerprint-"))
    data = photos(work / "photos")
    results: dict[str, Any] = {}
    for name in names:
        config = CONFIGS[name]
        job = work / name
        hp = dict(config["hp"])
        if "warm_from" in config:
            hp["warm_start"] = str(work / config["warm_from"] / "model")
        out = train(job, data, hp, config.get("env", {}))
        if config.get("resume"):
            shutil.rmtree(job / "model")  # the restarted job: same checkpoints, phase 1 resumed from them
            out = train(job, data, hp, config.get("env", {}))
        results[name] = fingerprint(job, out)
        print(f"{name}: {len(results[name]['weights'])} weights, {len(results[name]['tensorboard'])} events",
              flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return results


def compare(before: dict[str, Any], after: dict[str, Any]) -> int:
    differ = 0
    before, after = ({name: dict(parts, stdout=stdout_lines("\n".join(parts["stdout"])), metadata=scrub(parts["metadata"]),
                             validation=scrub(parts["validation"])) for name, parts in run.items()} for run in (before, after))
    for name in before:
        parts = [part for part in before[name] if before[name][part] != after.get(name, {}).get(part)]
        print(f"{name}: {'identical' if not parts else 'DIFFERENT: ' + ', '.join(parts)}")
        differ += bool(parts)
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out")
    parser.add_argument("--only", default=",".join(CONFIGS))
    parser.add_argument("--compare", nargs=2)
    args = parser.parse_args()
    if args.compare:
        return compare(*(json.loads(Path(p).read_text()) for p in args.compare))
    results = run_all(args.only.split(","))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
