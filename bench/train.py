"""Training benchmark: our two-phase recipe against a plain keras.io transfer-learning baseline.

    python bench/train.py DATASET_DIR --preset mobilenet_v2 [--seeds 1337,7,11]
    python bench/train.py DATASET_DIR --preset mobilenet_v2,efficientnet_lite0,efficientnet_lite1 --no-baseline
    python bench/train.py DATASET_DIR --preset resnet_v1_50 --weights none --resnet-size-only

Several presets (comma-separated) run one after the other within each seed, so that their times compare
runs made minutes apart; each run also counts the "not a flower" refusals of its kept `.tflite`
(bench/not_flowers.py's figures) and the table of presets is printed and written to
bench/results/train-presets.json.

Prints wall time, images/s per phase, validation and test top-1 of the SavedModel and of
each TFLite mode, model sizes, and the baseline's figures on the same split, the baseline run
right before each seed of ours. Every run of ours is also measured on the evaluation set
(`../shared/datasets/flower_photos_eval`, 1,000 photos no run trains or tunes on: about +-0.9
point where the 161-photo test split gives +-2), SavedModel and the `.tflite` that `auto` kept,
with the mean and standard deviation over the seeds: the figure that accepts or rejects a recipe.
Writes the figures to bench/results/train-PRESET.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from training import convert as cv  # noqa: E402
from training import dataset as ds  # noqa: E402
from training import train  # noqa: E402
from training.environment import JobEnvironment  # noqa: E402
from training.hyperparameters import parse  # noqa: E402


def job_env(work: Path, data: Path) -> JobEnvironment:
    return JobEnvironment.from_env({
        "SM_INPUT_CONFIG_DIR": str(work / "config"), "SM_CHANNEL_TRAINING": str(data),
        "SM_MODEL_DIR": str(work / "model"), "SM_OUTPUT_DIR": str(work / "output"),
        "SM_CHECKPOINT_DIR": str(work / "checkpoints"), "TRAINING_JOB_NAME": "bench",
    })


def subset(data: Path, per_class: int, work: Path) -> Path:
    """The first `per_class` photos of each class folder (a quick size check needs no more)."""
    out = work / "subset"
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        (out / folder.name).mkdir(parents=True)
        for photo in sorted(folder.iterdir())[:per_class]:
            shutil.copyfile(photo, out / folder.name / photo.name)
    return out


def baseline(data_dir: Path, image_size: int, epochs: int, seed: int) -> dict:
    """The keras.io / tensorflow.org transfer-learning recipe, on our split: a frozen
    MobileNetV2 run on every batch of every epoch, flip + rotation augmentation, dropout
    0.2 and a softmax head, Adam(1e-4), 10 epochs."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    started = time.monotonic()
    data = ds.load(data_dir, image_size, min_images_per_class=1)
    decoded = time.monotonic()
    base = keras.applications.MobileNetV2(input_shape=(image_size, image_size, 3), include_top=False,
                                          weights=str(_cached_mobilenet()))
    base.trainable = False
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.RandomFlip("horizontal")(inputs)
    x = keras.layers.RandomRotation(0.2)(x)
    x = keras.applications.mobilenet_v2.preprocess_input(x)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(len(data.labels), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    def batches(split, shuffle=False):
        d = tf.data.Dataset.from_tensor_slices((split.images, split.labels))
        if shuffle:
            d = d.shuffle(len(split.labels), seed=seed)
        return d.batch(32).map(lambda a, b: (tf.cast(a, tf.float32), b)).prefetch(tf.data.AUTOTUNE)

    train_split = data.splits["train"]
    fit_started = time.monotonic()
    model.fit(batches(train_split, True), validation_data=batches(data.splits["validation"]), epochs=epochs, verbose=0)
    fit_seconds = time.monotonic() - fit_started
    results = {}
    for name in ("validation", "test"):
        split = data.splits[name]
        predicted = model.predict(split.images.astype(np.float32), verbose=0).argmax(axis=1)
        results[f"{name}_accuracy"] = float((predicted == split.labels).mean())
    return dict(results, wall_seconds=round(time.monotonic() - started, 1), decode_seconds=round(decoded - started, 1),
                fit_seconds=round(fit_seconds, 1), epochs=epochs,
                train_images_per_second=round(len(train_split.labels) * epochs / fit_seconds, 1))


def _cached_mobilenet() -> Path:
    from training.presets import keras_cache

    return keras_cache() / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


def evaluation_set(root: Path, labels: list[str], size: int) -> tuple:
    """Pixels and class indices of every photo of the model's classes under `root` (the evaluation set)."""
    from not_flowers import flower_set  # bench/ is on sys.path when a bench script runs

    return flower_set(root, labels, size, None, (0.8, 0.1, 0.1))


def prediction_ms(model: Path, size: int, runs: int = 20) -> float:
    """Median milliseconds of one LiteRT prediction (the Lambda's path: one photo, two threads)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model), num_threads=2)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    photo = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    times = []
    for _ in range(runs + 2):
        started = time.perf_counter()
        interpreter.set_tensor(index, photo)
        interpreter.invoke()
        times.append(1000 * (time.perf_counter() - started))
    return round(sorted(times[2:])[runs // 2], 1)  # the first two warm up


NOT_FLOWERS = ROOT.parent / "shared" / "datasets" / "not_flowers"
PARTIAL = ROOT / "bench" / "results" / "train-runs.jsonl"  # every finished run, appended as it ends


def refusals(converted: Path, data_dir: Path, eval_dir: Path) -> dict | None:
    """The kept `.tflite`'s "not a flower" answers (the server's rule): the share of non-flower photos refused,
    of evaluation-set flowers refused, and what refusing 80 % of the non-flowers would cost in flowers."""
    if not NOT_FLOWERS.is_dir():
        return None
    from not_flowers import measure

    report = measure(converted, data_dir, eval_dir, NOT_FLOWERS)
    others, flowers = report["not_flowers"].get("all") or {}, report["flowers"].get("flower_photos_eval") or {}
    return {"not_flowers_refused": others.get("refused"), "flowers_refused": flowers.get("refused"),
            "flowers_refused_at_80_percent": others.get("flowers_refused_at_that_threshold"),
            "ece": flowers.get("ece_after"), "threshold": report["threshold"]}


def ours(data_dir: Path, work: Path, hyperparameters: dict, quantize: str, eval_dir: Path | None = None) -> dict:
    started = time.monotonic()
    env = job_env(work, data_dir)
    meta = train.run(env, parse(hyperparameters))
    trained = time.monotonic()
    converted = cv.convert(env.model_dir, work / "tflite", data_dir, quantize=quantize)
    done = time.monotonic()
    evaluation = None
    if eval_dir is not None and eval_dir.is_dir():
        images, truth = evaluation_set(eval_dir, meta["labels"], meta["image_size"])
        float_top1 = float((cv.saved_model_predict(env.model_dir / "saved_model", images.astype("float32")).argmax(1) == truth).mean())
        tflite_top1 = float((cv.tflite_predict(str(work / "tflite" / "model.tflite"), images).argmax(1) == truth).mean())
        evaluation = {"count": int(len(truth)), "saved_model_top1": float_top1, "tflite_top1": tflite_top1,
                      "tflite_loss_points": round(100 * (float_top1 - tflite_top1), 2)}
        evaluation["not_a_flower"] = refusals(work / "tflite", data_dir, eval_dir)
    seconds = meta["training"]["seconds"]
    counts = meta["dataset_counts"]
    fine_tune_epochs = sum(1 for h in meta["training"]["history"] if h["phase"] == "fine_tune")
    return {
        "wall_seconds_train": round(trained - started, 1),
        "wall_seconds_convert": round(done - trained, 1),
        "wall_seconds": round(done - started, 1),
        "seconds": seconds,
        "images_per_second": {
            "decode": round(sum(counts.values()) / max(seconds.get("decode", 0), 1e-9), 1),
            "features": round((counts["train"] + counts["validation"]) / max(seconds.get("features", 0), 1e-9), 1),
            "fine_tune": round(counts["train"] * fine_tune_epochs / max(seconds.get("fine_tune", 0), 1e-9), 1) if fine_tune_epochs else None,
        },
        "counts": counts,
        "head_epochs": meta["training"]["head_epochs"],
        "fine_tune_epochs": fine_tune_epochs,
        "stopped_by_time_budget": meta["training"]["stopped_by_time_budget"],
        "val_accuracy": meta["metrics"]["val_accuracy"],
        "saved_model_test_accuracy": converted["metrics"]["saved_model_test_accuracy"],
        "saved_model_held_out_accuracy": converted["metrics"]["saved_model_held_out_accuracy"],
        "saved_model_bytes": sum(f.stat().st_size for f in (env.model_dir / "saved_model").rglob("*") if f.is_file()),
        "tflite": converted["conversion"]["candidates"],
        "chosen": converted["quantization"],
        "chosen_bytes": converted["model"]["size_bytes"],
        "ms_per_prediction": prediction_ms(work / "tflite" / "model.tflite", meta["image_size"]),
        "image_size": meta["image_size"],
        "evaluation_set": evaluation,
    }


def print_ours(seed: int, o: dict) -> None:
    print(f"ours (seed {seed}): {o['wall_seconds']:.0f}s wall ({o['wall_seconds_train']:.0f}s training, "
          f"{o['wall_seconds_convert']:.0f}s conversion), laps {o['seconds']}")
    print(f"      images/s {o['images_per_second']}; epochs head {o['head_epochs']}, fine-tune {o['fine_tune_epochs']}")
    print(f"      val top-1 {o['val_accuracy']:.4f}; test top-1 SavedModel {o['saved_model_test_accuracy']:.4f}, "
          f"held-out {o['saved_model_held_out_accuracy']:.4f} ({o['saved_model_bytes'] / 1e6:.1f} MB)")
    for c in o["tflite"]:
        print(f"      tflite {c['quantization']:8s} test top-1 {c['accuracy']:.4f} ({100 * (c['accuracy'] - o['saved_model_test_accuracy']):+.2f})  "
              f"held-out {c['held_out_accuracy']:.4f} ({100 * (c['held_out_accuracy'] - o['saved_model_held_out_accuracy']):+.2f})  "
              f"agreement {c['held_out_agreement']:.4f}  {c['size_bytes'] / 1e6:.2f} MB")
    print(f"      auto picks {o['chosen']} ({o['chosen_bytes'] / 1e6:.2f} MB), {o['ms_per_prediction']} ms a prediction (LiteRT, 2 threads)")
    if o.get("evaluation_set"):
        e = o["evaluation_set"]
        print(f"      evaluation set ({e['count']} photos): SavedModel {e['saved_model_top1']:.4f}, "
              f"{o['chosen']} .tflite {e['tflite_top1']:.4f} (loss {e['tflite_loss_points']:+.2f} points)")
        if e.get("not_a_flower"):
            n = e["not_a_flower"]
            print(f"      not a flower: {n['not_flowers_refused']:.3f} of non-flowers refused, {n['flowers_refused']:.3f} of "
                  f"evaluation flowers (threshold {n['threshold']}); refusing 80 % would refuse "
                  f"{n['flowers_refused_at_80_percent']:.3f} of flowers")


def mean_sd(values: list[float]) -> str:
    import statistics

    return f"{statistics.mean(values):.3f} ({statistics.stdev(values) if len(values) > 1 else 0.0:.3f})"


def preset_table(by_preset: dict[str, list[dict]]) -> str:
    """One row per preset: mean (sd) over the seeds of what decides a default."""
    rows = ["| preset (px) | evaluation top-1, SavedModel | kept `.tflite` (mode, MB) | TFLite loss (points) | "
            "training + conversion (s) | LiteRT ms | non-flowers refused | flowers refused |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for preset, runs in by_preset.items():
        evals = [o["evaluation_set"] for o in runs if o.get("evaluation_set")]
        if not evals:
            continue
        refused = [e["not_a_flower"] for e in evals if e.get("not_a_flower")]
        modes = ", ".join(sorted({f"{o['chosen']} {o['chosen_bytes'] / 1e6:.1f}" for o in runs}))
        rows.append(" | ".join([
            f"| {preset} ({runs[0]['image_size']})", mean_sd([e["saved_model_top1"] for e in evals]),
            f"{mean_sd([e['tflite_top1'] for e in evals])}: {modes}",
            f"{sum(e['tflite_loss_points'] for e in evals) / len(evals):+.2f}",
            f"{sum(o['wall_seconds_train'] for o in runs) / len(runs):.0f} + {sum(o['wall_seconds_convert'] for o in runs) / len(runs):.0f}",
            f"{sorted(o['ms_per_prediction'] for o in runs)[len(runs) // 2]}",
            mean_sd([r["not_flowers_refused"] for r in refused]) if refused else "-",
            (mean_sd([r["flowers_refused"] for r in refused]) + " |") if refused else "- |"]))
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--preset", default="mobilenet_v2", help="a preset, or several comma-separated (compared run by run)")
    parser.add_argument("--weights", default="")
    parser.add_argument("--hp", action="append", default=[], help="extra hyperparameter name=value (every preset)")
    parser.add_argument("--baseline-epochs", type=int, default=10)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--seeds", default="1337", help="comma-separated: our recipe runs once per seed (the test split is small, so its spread matters)")
    parser.add_argument("--keep", type=Path, help="keep each seed's trained and converted model under this folder")
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "datasets" / "flower_photos_eval",
                        help="the evaluation set (photos no run trains on); a missing folder skips it")
    parser.add_argument("--resnet-size-only", action="store_true",
                        help="a few photos, one head and one fine-tuning epoch: cost per image, size and speed per mode")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="flowers-bench-"))
    presets = args.preset.split(",")
    hyperparameters = {"weights": args.weights, "max_training_time": 1800}
    hyperparameters.update(dict(item.split("=", 1) for item in args.hp))
    data = args.data
    quantize = "auto"
    if args.resnet_size_only:
        data = subset(args.data, 12, work)
        hyperparameters.update(epochs=1, head_epochs=1, min_images_per_class=1)
        args.no_baseline = True

    seeds = [int(seed) for seed in args.seeds.split(",")]
    runs: dict[str, list[dict]] = {preset: [] for preset in presets}
    baselines = []
    for seed in seeds:
        # The baseline runs right before each seed's runs of ours, with the same seed: this shared
        # machine's speed drifts by tens of percent over a quarter of an hour, so a time
        # ratio is only fair between two runs made minutes apart. So do the presets, in turn.
        if not args.no_baseline:
            baselines.append(baseline(data, 224, args.baseline_epochs, seed=seed))
        for preset in presets:
            folder = work / preset / f"seed-{seed}"
            runs[preset].append(ours(data, folder, dict(hyperparameters, preset=preset, seed=seed), quantize,
                                     None if args.resnet_size_only else args.eval))
            with PARTIAL.open("a") as log:  # a long comparison cut short still leaves its finished runs
                log.write(json.dumps({"preset": preset, "seed": seed, **runs[preset][-1]}) + "\n")
            if args.keep:
                shutil.copytree(folder, args.keep / preset / f"seed-{seed}", dirs_exist_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    for preset in presets:
        report(args, preset, dict(hyperparameters, preset=preset), seeds, runs[preset], baselines)
    if len(presets) > 1:
        table = preset_table(runs)
        print(f"\n== presets over seeds {args.seeds}: mean (sd)\n{table}")
        out = ROOT / "bench" / "results" / "train-presets.json"
        out.write_text(json.dumps({"presets": presets, "seeds": seeds, "cpus": os.cpu_count(), "table": table.splitlines(),
                                   "runs": runs}, indent=2) + "\n")
        print(f"figures written to {out.relative_to(ROOT)}")
    return 0


def report(args, preset: str, hyperparameters: dict, seeds: list[int], runs: list[dict], baselines: list[dict]) -> None:
    """One preset's figures, printed and written to bench/results/train-PRESET.json."""
    summary = {"preset": preset, "data": str(args.data), "cpus": os.cpu_count(), "hyperparameters": hyperparameters,
               "ours": runs[0], "seeds": dict(zip(map(str, seeds), runs))}
    if baselines:
        summary["baseline"] = baselines[0]
        summary["baselines"] = dict(zip(map(str, seeds), baselines))
    print(f"\n== {preset} on {args.data} ({os.cpu_count()} CPUs)")
    for seed, o in zip(seeds, runs):
        print_ours(seed, o)
    evaluations = [o["evaluation_set"] for o in runs if o.get("evaluation_set")]
    if evaluations:
        import statistics

        tops = [e["saved_model_top1"] for e in evaluations]
        tflites = [e["tflite_top1"] for e in evaluations]
        sd = statistics.stdev(tops) if len(tops) > 1 else 0.0
        summary["evaluation_set"] = {"seeds": len(tops), "mean": statistics.mean(tops), "sd": sd,
                                     "tflite_mean": statistics.mean(tflites),
                                     "tflite_loss_points_mean": round(100 * (statistics.mean(tops) - statistics.mean(tflites)), 2)}
        print(f"evaluation set over {len(tops)} seed(s): SavedModel top-1 {', '.join(f'{t:.4f}' for t in tops)} "
              f"(mean {statistics.mean(tops):.4f}, sd {sd:.4f}); .tflite mean {statistics.mean(tflites):.4f} "
              f"(loss {summary['evaluation_set']['tflite_loss_points_mean']:+.2f} points)")
    if len(runs) > 1:
        tests = [o["saved_model_test_accuracy"] for o in runs]
        print(f"over {len(runs)} seeds: test top-1 {', '.join(f'{t:.4f}' for t in tests)} (mean {sum(tests) / len(tests):.4f}); "
              f"training {', '.join(str(round(o['wall_seconds_train'])) for o in runs)} s")
    for seed, o, b in zip(seeds, runs, baselines):
        print(f"baseline (seed {seed}, frozen MobileNetV2 + softmax, {b['epochs']} epochs, run just before ours): "
              f"{b['wall_seconds']:.0f}s wall, val top-1 {b['validation_accuracy']:.4f}, test top-1 {b['test_accuracy']:.4f}")
        print(f"ratios (seed {seed}): test top-1 ours - baseline = {o['saved_model_test_accuracy'] - b['test_accuracy']:+.4f}; "
              f"training time ours / baseline = {o['wall_seconds_train'] / b['wall_seconds']:.2f}x")
    out = ROOT / "bench" / "results" / f"train-{preset}{'-size' if args.resnet_size_only else ''}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"figures written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
