"""Prediction latency, in one run on the same model.tflite and the same photos:

  1. raw LiteRT invoke (pixels ready)            4. Keras predict on the trained model (TensorFlow)
  2. decode + invoke (chalicelib.contract.imaging + LiteRT)  5. cold start: new process -> first answer
  3. the full handler through Chalice's test client (moto for S3 and the registry)
  and the import time of the prediction module (chalicelib.serving.predictor).

Targets: handler p50 <= 1.3 x decode+invoke; cold start < 1.5 s; import < 0.5 s.

    python bench/predict.py                       # trains + converts mobilenet_v2 int8 first (~2 min)
    python bench/predict.py --work /tmp/bench     # reuse a previous build there
The cold start reads the model from a folder (the AWS path adds the S3 download and one
registry call). The bench may import TensorFlow; the app never does.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PHOTOS = SHARED / "datasets" / "flower_photos"
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "integration")]  # test_predict.register


def build(work: Path, preset: str, per_class: int, quantize: str) -> Path:
    """Train (head only, on cached features) and convert: a real model of the preset."""
    if (work / "converted" / "metadata.json").exists():
        return work
    data = work / "data"
    for label_dir in sorted(p for p in PHOTOS.iterdir() if p.is_dir()):
        (data / label_dir.name).mkdir(parents=True, exist_ok=True)
        for photo in sorted(label_dir.glob("*.jpg"))[:per_class]:
            shutil.copyfile(photo, data / label_dir.name / photo.name)
    keras_home = work / "keras"
    (keras_home / "models").mkdir(parents=True, exist_ok=True)
    for weights in (SHARED / "weights").glob("*.h5"):
        shutil.copyfile(weights, keras_home / "models" / weights.name)
    config = work / "config"
    config.mkdir(exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps({"preset": preset, "epochs": "0", "head_epochs": "5", "batch_size": "16"}))
    env = dict(os.environ, SM_INPUT_CONFIG_DIR=str(config), SM_CHANNEL_TRAINING=str(data), SM_MODEL_DIR=str(work / "model"),
               SM_OUTPUT_DIR=str(work / "output"), SM_CHECKPOINT_DIR=str(work / "checkpoints"), KERAS_HOME=str(keras_home),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    for command in (["-m", "training.train"],
                    ["-m", "training.convert", str(work / "model"), str(work / "converted"), "--data", str(data), "--quantize", quantize]):
        print("running", " ".join(command[1:2]), flush=True)
        subprocess.run([sys.executable, *command], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return work


def interleaved(variants: dict, runs: int, warmup: int = 3) -> dict:
    """Time each variant once per round, round after round: a neighbour's load on a shared
    machine then slows every variant alike, so the ratios stay fair."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - t0) * 1000)
    result = {}
    for name, values in samples.items():
        values.sort()
        result[name] = {"p50": statistics.median(values), "p95": values[int(0.95 * (len(values) - 1))]}
    return result


COLD = textwrap.dedent("""
    import time, sys, json, pathlib
    t0 = time.perf_counter()
    sys.path[:0] = [{root!r}]
    import chalicelib.serving.predictor as predictor_module
    t_import = time.perf_counter() - t0
    from chalicelib.pipeline.records import ModelEntry
    folder = pathlib.Path({folder!r})
    meta = json.loads((folder / "metadata.json").read_text())
    class Folder:
        def production_id(self): return "bench"
        def production(self): return ModelEntry("bench", "approved", 0, model_uri="model.tflite", metadata_uri="metadata.json", sha256=meta["model"]["sha256"])
        def read(self, uri): return (folder / uri).read_bytes()
    model, answer = predictor_module.Predictor(Folder()).predict(pathlib.Path({photo!r}).read_bytes(), 5)
    print(json.dumps({{"import_s": t_import, "in_process_s": time.perf_counter() - t0, "top": answer[0]["label"],
                       "tensorflow": "tensorflow" in sys.modules}}), flush=True)
""")


def cold_start(folder: Path, photo: Path, runs: int) -> dict:
    results = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", COLD.format(root=str(ROOT), folder=str(folder), photo=str(photo))],
                             capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        results.append(dict(json.loads(out.stdout.strip().splitlines()[-1]), wall_s=wall))
    results.sort(key=lambda r: r["wall_s"])
    return results[len(results) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, help="build folder (kept); default: a temporary one")
    parser.add_argument("--preset", default="mobilenet_v2")
    parser.add_argument("--quantize", default="int8")
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--photos", type=int, default=10)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="flowers-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    build(work, args.preset, args.per_class, args.quantize)
    folder = work / "converted"
    metadata = json.loads((folder / "metadata.json").read_text())
    photos = [p.read_bytes() for label in sorted(PHOTOS.iterdir()) if label.is_dir() for p in sorted(label.glob("*.jpg"))[-2:]][: args.photos]
    size = metadata["image_size"]

    import numpy as np

    from chalicelib.contract.imaging import load_pixels

    # Cold start first, before this process warms the page cache with TensorFlow.
    cold = cold_start(folder, sorted((PHOTOS / "roses").glob("*.jpg"))[-1], runs=3)

    model = None  # the handler's own interpreter, once it has loaded (below)
    pixels = [load_pixels(p, size).pixels for p in photos]
    cycle = {"i": 0}

    def next_index():
        cycle["i"] = (cycle["i"] + 1) % len(photos)
        return cycle["i"]

    variants = {  # `model` is bound below, inside the moto account
        "raw LiteRT invoke": lambda: model.probabilities(pixels[next_index()]),
        "decode + invoke": lambda: model.probabilities(load_pixels(photos[next_index()], size).pixels),
    }

    # The full handler: Chalice test client -> middleware -> handlers.predict, model from moto S3 + registry.
    import pytest  # noqa: F401  (pipeline_fixtures imports it)
    from moto import mock_aws

    import pipeline_fixtures as fx

    for key, value in fx.ENV.items():
        os.environ[key] = value
    with mock_aws():
        import boto3
        from chalice.test import Client

        import app as chalice_app
        from chalicelib import services
        from chalicelib.adapters.aws.dynamodb_state import create_table

        services.reset()
        s3 = boto3.client("s3", region_name=fx.REGION)
        s3.create_bucket(Bucket=fx.ENV["ARTIFACT_BUCKET"])
        create_table(boto3.client("dynamodb", region_name=fx.REGION), fx.ENV["STATE_TABLE"])
        world = fx.AwsWorld(s3, boto3.client("sagemaker", region_name=fx.REGION), None, dict(fx.ENV))
        from test_predict import register

        register(world, folder, version="00000000000000be")
        logging_off = open(os.devnull, "w")
        with Client(chalice_app.app) as client:
            stdout, sys.stdout = sys.stdout, logging_off  # EMF metric lines and logs go to stdout in Lambda
            try:
                # One interpreter for every variant (two XNNPACK thread pools on 2 cores would fight).
                client.http.post("/predict", headers={"Content-Type": "image/jpeg"}, body=photos[0])
                model = services.get().predictor.model
                variants["handler (Chalice client)"] = lambda: client.http.post(
                    "/predict", headers={"Content-Type": "image/jpeg"}, body=photos[next_index()])
                results = interleaved(variants, args.runs)
            finally:
                sys.stdout = stdout
        services.reset()

    raw, decode, handler = (results[k] for k in ("raw LiteRT invoke", "decode + invoke", "handler (Chalice client)"))
    keras_result = None
    try:
        import keras

        import training.model  # noqa: F401  (registers the model classes the .keras file names)
        from training.presets import custom_objects

        full = keras.saving.load_model(work / "model" / "model.keras", custom_objects=custom_objects(), compile=False)
        batch = [p.astype(np.float32)[None] for p in pixels]
        keras_result = interleaved({"keras": lambda: full.predict(batch[next_index()], verbose=0)}, max(10, args.runs // 5))["keras"]
    except Exception as exc:  # the bench still reports the rest
        print(f"keras predict skipped: {str(exc)[:300]}")

    print(f"\nmodel: {metadata['preset']} {metadata['quantization']} {metadata['model']['size_bytes'] / 1e6:.2f} MB, "
          f"{size}x{size}, {len(metadata['labels'])} classes, {len(photos)} photos, {args.runs} runs, {os.cpu_count()} CPUs")
    print(f"{'':28}{'p50 ms':>9}{'p95 ms':>9}")
    rows = [("raw LiteRT invoke", raw), ("decode + invoke", decode), ("handler (Chalice client)", handler)]
    if keras_result:
        rows.append(("Keras predict", keras_result))
    for name, r in rows:
        print(f"{name:28}{r['p50']:9.2f}{r['p95']:9.2f}")
    ratio = handler["p50"] / decode["p50"]
    print(f"\nhandler p50 / decode+invoke p50 = {ratio:.2f}  (target <= 1.3) {'OK' if ratio <= 1.3 else 'MISSED'}")
    print(f"decode+invoke p50 / raw invoke p50 = {decode['p50'] / raw['p50']:.2f}")
    if keras_result:
        print(f"Keras predict p50 / decode+invoke p50 = {keras_result['p50'] / decode['p50']:.2f}")
    print(f"cold start (new process -> first answer) = {cold['wall_s']:.2f} s  (target < 1.5) {'OK' if cold['wall_s'] < 1.5 else 'MISSED'}")
    print(f"import chalicelib.serving.predictor = {cold['import_s']:.3f} s  (target < 0.5) {'OK' if cold['import_s'] < 0.5 else 'MISSED'}; "
          f"tensorflow imported: {cold['tensorflow']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
