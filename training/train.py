"""The `train` entrypoint of the training image (SageMaker's container contract).

Reads hyperparameters.json and the `training` channel, fine-tunes a preset model in two
phases, and writes a SavedModel (+ labels.txt, metadata.json) to the model directory,
TensorBoard logs, validation.json and, on failure, SageMaker's failure file.

    python -m training.train            # paths from SM_* variables, else /opt/ml/...
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from chalicelib.imaging import PREPROCESSING
from chalicelib.training_contract import (
    KERAS_FILE,
    LABELS_FILE,
    METADATA_FILE,
    SAVED_MODEL_DIR,
    VALIDATION_REPORT,
    format_metric_line,
)
from training import dataset as ds
from training.environment import EnvironmentError_, JobEnvironment
from training.hyperparameters import HyperparameterError, Hyperparameters, parse
from training.presets import PRESETS, WeightsUnavailable


class Stopwatch:
    """Named laps of wall time: where a run spends its minutes (metadata and benchmarks)."""

    def __init__(self):
        self.last = time.monotonic()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> float:
        """Close the current lap under `name` (adding to it if seen before); return its seconds."""
        now = time.monotonic()
        elapsed, self.last = now - self.last, now
        self.laps[name] = round(self.laps.get(name, 0.0) + elapsed, 2)
        return elapsed


def export_reserve(max_training_time: int) -> float:
    """Seconds kept back from the budget for evaluation and export."""
    return min(120.0, max(3.0, 0.1 * max_training_time))


def run(env: JobEnvironment, hp: Hyperparameters, started: float | None = None) -> dict:
    """Train and export. Returns the metadata written beside the model."""
    started = time.monotonic() if started is None else started
    deadline = started + hp.max_training_time - export_reserve(hp.max_training_time)

    from training import distribute

    plan, strategy = distribute.strategy_for(env.hosts, env.current_host, env.cpu_devices)
    import keras
    import numpy as np
    import tensorflow as tf

    from training import callbacks as cb
    from training import evaluation, input_pipeline
    from training.model import build, prepare_multi_worker, unfreeze_top

    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(hp.seed)
    preset = PRESETS[hp.preset]
    size = hp.resolved_image_size()
    print(f"strategy={plan.kind} replicas={strategy.num_replicas_in_sync} preset={preset.name} image_size={size}", flush=True)

    timer = Stopwatch()
    data = ds.load(env.training_dir, size, hp.splits, hp.min_images_per_class)
    ds.write_report(data, env.output_data_dir / VALIDATION_REPORT)
    counts = {name: len(split.paths) for name, split in data.splits.items()}
    print(f"dataset version={data.scan.version} layout={data.scan.layout} classes={len(data.labels)} "
          f"train={counts['train']} validation={counts['validation']} test={counts['test']} "
          f"skipped={len(data.skipped)} decode_seconds={timer.lap('decode'):.1f}", flush=True)
    train, val = data.splits["train"], data.splits["validation"]
    validated_on = "validation"
    if not len(val.paths):  # a tiny data set: early stopping watches the test split instead
        validated_on = "test" if len(data.splits["test"].paths) else "train"
        val = data.splits[validated_on]
        print(f"the validation split is empty: validating on the {validated_on} split", flush=True)
    num_classes = len(data.labels)

    # Only the chief writes shared outputs; other workers write to throwaway folders.
    scratch = Path(tempfile.mkdtemp(prefix="flowers-worker-"))
    model_dir = env.model_dir if plan.is_chief else scratch / "model"
    log_dir = str(env.tensorboard_dir if plan.is_chief else scratch / "tensorboard")
    ckpt_dir = env.checkpoint_dir if plan.is_chief else scratch / "checkpoints"
    _reset_stale_checkpoints(ckpt_dir, data.scan.version, hp)

    with strategy.scope():
        clf = build(preset, hp.resolved_weights(), size, num_classes, hp.dropout)
    if plan.kind == "multi_worker":
        prepare_multi_worker(clf.head)
        prepare_multi_worker(clf.full)
    warm = _warm_start(clf.full, hp.warm_start, data.labels)

    def onehot(split):
        return keras.utils.to_categorical(split.labels, num_classes)

    def batches(x, y, shuffle=False, augment=False, repeat=False):
        return input_pipeline.batches(x, y, hp.batch_size * strategy.num_replicas_in_sync, seed=hp.seed,
                                      shuffle=shuffle, augment=augment, repeat=repeat)

    history: list[dict] = []
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing)
    tensorboard = keras.callbacks.TensorBoard(log_dir=log_dir, histogram_freq=0, write_graph=False, profile_batch=0)
    budget = cb.TimeBudget(deadline, strategy if plan.kind == "multi_worker" else None)

    # Phase 1: the head on backbone features computed once (the backbone never runs per epoch here).
    head_ckpt = ckpt_dir / "head.weights.h5"
    resumed = head_ckpt.exists() and (ckpt_dir / "head.json").exists()
    if resumed:
        clf.head.load_weights(head_ckpt)
        head_epochs_run = json.loads((ckpt_dir / "head.json").read_text())["epochs"]
        print(f"resumed: head weights from {head_ckpt} ({head_epochs_run} epochs)", flush=True)
        val_features = _features(clf.extractor, val.images, hp.batch_size)
    else:
        timer.lap("setup")
        train_features = _features(clf.extractor, train.images, hp.batch_size)
        train_targets = onehot(train)
        if hp.augmentation:
            # The mirror image is the one augmentation that costs nothing per epoch: its
            # features are computed once too, doubling what the head learns from.
            mirrored = _features(clf.extractor, train.images[:, :, ::-1], hp.batch_size)
            train_features = np.concatenate([train_features, mirrored])
            train_targets = np.concatenate([train_targets, train_targets])
        val_features = _features(clf.extractor, val.images, hp.batch_size)
        timer.lap("features")
        with strategy.scope():
            clf.head.compile(optimizer=keras.optimizers.Adam(hp.learning_rate), loss=loss, metrics=["accuracy"])
            fit = clf.head.fit(
                batches(train_features, train_targets, shuffle=True),
                validation_data=batches(val_features, onehot(val)),
                epochs=hp.head_epochs,
                shuffle=False,  # the tf.data pipeline shuffles
                verbose=0,
                callbacks=[
                    cb.MetricLines("head", hp.head_epochs, history=history),
                    tensorboard,
                    keras.callbacks.EarlyStopping(monitor="val_loss", patience=hp.patience, restore_best_weights=True),
                    budget,
                ],
            )
        head_epochs_run = len(fit.history.get("loss", []))
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        clf.head.save_weights(head_ckpt)
        (ckpt_dir / "head.json").write_text(json.dumps({"epochs": head_epochs_run}))
    timer.lap("head")
    head_probabilities = clf.head.predict(val_features, batch_size=hp.batch_size, verbose=0)
    head_accuracy = _top1(head_probabilities, val.labels)
    head_loss = float(loss(onehot(val), head_probabilities)) if len(val.labels) else float("inf")
    print(format_metric_line({"val_accuracy": head_accuracy, "val_loss": head_loss}, phase="head", result="best"), flush=True)

    # Phase 2: fine-tune the top of the backbone on augmented photos, decaying learning rate.
    layers = hp.resolved_fine_tune_layers()
    fine_tuned = False
    if hp.epochs > 0 and layers > 0 and not budget.expired and time.monotonic() < deadline:
        with strategy.scope():
            unfrozen = unfreeze_top(clf.backbone, layers)
            steps = max(1, -(-len(train.paths) // (hp.batch_size * strategy.num_replicas_in_sync)))
            # One epoch of linear warm-up: a fresh Adam's first steps would otherwise jolt the
            # pretrained weights (validation accuracy dips well below the head's), then cosine decay.
            peak = hp.learning_rate * hp.resolved_fine_tune_lr_scale()
            schedule = keras.optimizers.schedules.CosineDecay(
                peak / 10, decay_steps=steps * hp.epochs, alpha=0.05, warmup_target=peak, warmup_steps=steps)
            clf.full.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=["accuracy"])
            print(f"fine-tuning {unfrozen} layers with weights for {hp.epochs} epochs", flush=True)
            best = cb.RestoreBest((head_accuracy, head_loss), len(val.labels), hp.patience, start_from_epoch=hp.epochs // 2)
            clf.full.fit(
                batches(train.images, onehot(train), shuffle=True, augment=hp.augmentation, repeat=True),
                steps_per_epoch=steps,
                validation_data=batches(val.images, onehot(val)),
                initial_epoch=head_epochs_run,
                epochs=head_epochs_run + hp.epochs,
                shuffle=False,
                verbose=0,
                callbacks=[
                    keras.callbacks.BackupAndRestore(str(ckpt_dir / "fine_tune"), delete_checkpoint=True),
                    cb.MetricLines("fine_tune", head_epochs_run + hp.epochs, history=history),
                    tensorboard,
                    best,  # early stopping on validation accuracy, restoring the best epoch's weights
                    budget,
                ],
            )
        fine_tuned = best.improved
    timer.lap("fine_tune")

    # Evaluate on the test split (the validation split when the data set is too small for one).
    evaluated_on = "test" if len(data.splits["test"].paths) else "validation"
    test = data.splits[evaluated_on]
    probabilities = clf.full.predict(test.images.astype(np.float32), batch_size=hp.batch_size, verbose=0)
    metrics = evaluation.classification_metrics(test.labels, probabilities.argmax(axis=1), data.labels)
    val_accuracy = float(_accuracy(clf.full, val.images.astype(np.float32), val.labels, hp.batch_size))
    evaluation.log_to_tensorboard(log_dir, metrics, data.labels, step=len(history))
    print(format_metric_line({"test_accuracy": metrics["accuracy"], "val_accuracy": val_accuracy}, result="final"), flush=True)

    metadata = {
        "labels": data.labels,
        "preset": preset.name,
        "image_size": size,
        "input": {"shape": [1, size, size, 3], "dtype": "float32", "range": [0, 255]},
        "preprocessing": dict(PREPROCESSING, model=preset.preprocessing),
        "hyperparameters": hp.as_dict(),
        "dataset_version": data.scan.version,
        "dataset_counts": counts,
        "metrics": {"val_accuracy": val_accuracy, "validated_on": validated_on, "test": dict(metrics, evaluated_on=evaluated_on)},
        "training": {
            "strategy": plan.kind,
            "replicas": strategy.num_replicas_in_sync,
            "head_epochs": head_epochs_run,
            "resumed": resumed,
            "fine_tuned": fine_tuned,
            "warm_start": warm,
            "stopped_by_time_budget": budget.expired,
            "seconds": timer.laps,
            "history": history,
        },
        "source_job": env.job_name,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    timer.lap("evaluate")
    _export(clf.full, model_dir, data.labels)
    timer.lap("export")  # metadata["training"]["seconds"] is timer.laps itself
    timer.laps["total"] = round(time.monotonic() - started, 1)
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    if not plan.is_chief:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"model written to {model_dir} in {time.monotonic() - started:.1f}s", flush=True)
    return metadata


def _features(extractor, images, batch_size: int):
    """Pooled backbone features for every image, in inference mode, batch by batch."""
    import numpy as np
    import tensorflow as tf

    if len(images) == 0:
        return np.zeros((0, extractor.output_shape[-1]), np.float32)
    spec = tf.TensorSpec([None, *images.shape[1:]], tf.float32)
    call = tf.function(lambda x: extractor(x, training=False), input_signature=[spec])
    out = [call(tf.cast(images[i : i + batch_size], tf.float32)).numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float32)


def _accuracy(model, x, labels, batch_size: int) -> float:
    if len(x) == 0:
        return 0.0
    return _top1(model.predict(x, batch_size=batch_size, verbose=0), labels)


def _top1(probabilities, labels) -> float:
    """Share of rows whose most probable class is the label; 0 for no rows."""
    return float((probabilities.argmax(axis=1) == labels).mean()) if len(labels) else 0.0


def _fingerprint(dataset_version: str, hp: Hyperparameters) -> str:
    return hashlib.sha256(json.dumps([dataset_version, hp.as_dict()], sort_keys=True).encode()).hexdigest()[:16]


def _reset_stale_checkpoints(ckpt_dir: Path, dataset_version: str, hp: Hyperparameters) -> None:
    """Resume only a run of the same data and hyperparameters; anything else starts afresh."""
    marker = ckpt_dir / "run.json"
    fingerprint = _fingerprint(dataset_version, hp)
    if ckpt_dir.exists() and marker.exists() and json.loads(marker.read_text()).get("fingerprint") == fingerprint:
        return
    for stale in ("head.weights.h5", "head.json", "fine_tune"):
        path = ckpt_dir / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"fingerprint": fingerprint}))


def _warm_start(full, source: str, labels: list[str]) -> str:
    """Start from a previous model's weights when its classes and shapes match; say why not otherwise."""
    if not source:
        return ""
    import keras

    from training.presets import custom_objects

    folder = Path(source)
    try:
        old_labels = (folder / LABELS_FILE).read_text().split("\n")
        old_labels = [label for label in old_labels if label]
        if old_labels != labels:
            print(f"warm start skipped: classes differ ({old_labels} vs {labels})", flush=True)
            return "skipped: classes differ"
        previous = keras.saving.load_model(folder / KERAS_FILE, custom_objects=custom_objects(), compile=False)
        full.set_weights(previous.get_weights())
    except (OSError, ValueError) as exc:
        print(f"warm start skipped: {exc}", flush=True)
        return f"skipped: {exc}"
    print(f"warm start from {folder}", flush=True)
    return str(folder)


def _export(full, model_dir: Path, labels: list[str]) -> None:
    """The model files; metadata.json is written after, once the export's time is known."""
    model_dir.mkdir(parents=True, exist_ok=True)
    saved = model_dir / SAVED_MODEL_DIR
    if saved.exists():
        shutil.rmtree(saved)
    full.export(str(saved), verbose=False)
    full.save(model_dir / KERAS_FILE)
    (model_dir / LABELS_FILE).write_text("\n".join(labels) + "\n")


def fail(env: JobEnvironment, message: str) -> None:
    """SageMaker shows the failure file's text as the job's FailureReason."""
    print(f"ERROR: {message}", file=sys.stderr, flush=True)
    try:
        env.failure_file.parent.mkdir(parents=True, exist_ok=True)
        env.failure_file.write_text(message[:1000])
    except OSError as exc:
        print(f"cannot write {env.failure_file}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    env = JobEnvironment.from_env()
    try:
        hp = parse(env.hyperparameters())
        run(env, hp, started)
        return 0
    except ds.DatasetError as exc:
        if exc.dataset is not None:
            ds.write_report(exc.dataset, env.output_data_dir / VALIDATION_REPORT)
        fail(env, f"data set: {exc}")
    except (HyperparameterError, EnvironmentError_, WeightsUnavailable) as exc:
        fail(env, str(exc))
    except Exception as exc:  # anything else is a bug: keep the traceback in the log
        traceback.print_exc()
        fail(env, f"internal error: {type(exc).__name__}: {exc}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
