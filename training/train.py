"""The `train` entrypoint of the training image (SageMaker's container contract).

Reads hyperparameters.json and the `training` channel, fine-tunes a preset model in two
phases, and writes a SavedModel (+ labels.txt, metadata.json) to the model directory,
TensorBoard logs, validation.json and, on failure, SageMaker's failure file.

    python -m training.train            # paths from SM_* variables, else /opt/ml/...

`run` is the recipe, one named step after another: `start` (strategy, precision, seed),
`load_data` (and the class weights, `training/class_balance.py`), `build_model` (and `warm_start`),
`train_head` (phase 1, on cached backbone features), `find_label_issues` (likely mislabelled photos,
on those features: `training/label_issues.py`), `fine_tune` (phase 2, on augmented photos), `calibrate` (a temperature and the "not a
flower" threshold, fitted on the validation split), `evaluate`, `describe` (metadata.json) and `export`. TensorFlow and Keras are imported inside the steps, so a job with bad
hyperparameters fails in a moment, before loading them.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.contract.hyperparameters import HyperparameterProblem
from chalicelib.contract.imaging import PREPROCESSING
from chalicelib.contract.training_job import (
    KERAS_FILE,
    LABELS_FILE,
    METADATA_FILE,
    SAVED_MODEL_DIR,
    VALIDATION_REPORT,
    format_metric_line,
)
from chalicelib.contract.warm_start import CLASSES_DIFFER, same_classes, skipped, started_warm
from training import dataset as ds
from training import distribute, feature_cache
from training import incremental
from training.environment import EnvironmentError_, JobEnvironment
from training.hyperparameters import Hyperparameters, parse
from training.presets import PRESETS, WeightsUnavailable

if TYPE_CHECKING:
    import keras
    import numpy as np
    import tensorflow as tf

    from training.callbacks import TimeBudget
    from training.model import Classifier


class Stopwatch:
    """Named laps of wall time: where a run spends its minutes (metadata and benchmarks).

    Each phase closes its own lap(s) when it ends: decode, setup, features, head, fine_tune,
    evaluate, export.
    """

    def __init__(self) -> None:
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


@dataclass(frozen=True)
class Cluster:
    """Where the job runs: the distribution plan and the tf.distribute strategy that carries it out."""

    plan: distribute.Plan
    strategy: tf.distribute.Strategy

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def multi_worker(self) -> bool:
        return self.plan.kind == "multi_worker"

    def global_batch(self, batch_size: int) -> int:
        """A step's batch across all replicas: `batch_size` is per replica."""
        return batch_size * self.replicas


@dataclass(frozen=True)
class SplitData:
    """The decoded photos, each role already given its split."""

    labels: list[str]  # class names; a label is its index here
    train: ds.SplitArrays
    validation: ds.SplitArrays  # early stopping watches it: the validation split, else test, else train
    validated_on: str
    test: ds.SplitArrays  # the final metrics: the test split, else the validation split
    evaluated_on: str
    version: str  # the data set's version: a hash of its files
    counts: dict[str, int]  # photos in each of the three splits
    class_weight: dict[int, float] | None = None  # Keras' class_weight when the classes are imbalanced (class_balance)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def onehot(self, split: ds.SplitArrays) -> np.ndarray:
        import keras

        return keras.utils.to_categorical(split.labels, self.num_classes)


@dataclass(frozen=True)
class Folders:
    """Where this worker writes. Only the chief writes shared outputs; other workers write to throwaway folders."""

    model: Path
    tensorboard: str
    checkpoints: Path
    throwaway: Path | None  # removed at the end

    def clean_up(self) -> None:
        if self.throwaway is not None:
            shutil.rmtree(self.throwaway, ignore_errors=True)


@dataclass(frozen=True)
class Progress:
    """What both training phases report to: the epoch history (for metadata.json), TensorBoard and the time budget."""

    history: list[dict[str, Any]]
    tensorboard: keras.callbacks.TensorBoard
    budget: TimeBudget

    def out_of_time(self) -> bool:
        return self.budget.expired or time.monotonic() >= self.budget.deadline


@dataclass(frozen=True)
class Head:
    """Phase 1's outcome: how many epochs it ran, and the validation score fine-tuning has to beat."""

    epochs: int
    resumed: bool  # loaded from a restarted job's checkpoint rather than trained
    val_accuracy: float
    val_loss: float
    features: dict[str, np.ndarray] | None = None  # phase 1's backbone features by split name, when computed


@dataclass(frozen=True)
class Calibrated:
    """The exported model (the trained one, its logits divided by `temperature` before the softmax, times
    the familiarity factor when there is a gate), the threshold below which the served top score means
    "not recognised", and the scores it gives the validation and test photos."""

    model: keras.Model
    temperature: float
    threshold: float
    summary: dict[str, Any]  # metadata.json's "calibration"
    validation_logits: np.ndarray
    test_logits: np.ndarray
    test_scores: np.ndarray  # what the exported model answers for the test photos

@dataclass(frozen=True)
class Scores:
    """The final model's scores."""

    test: dict[str, Any]  # evaluation.classification_metrics on SplitData.test, with ECE before and after calibration
    val_accuracy: float


def run(env: JobEnvironment, hp: Hyperparameters, started: float | None = None) -> dict[str, Any]:
    """Train and export, phase by phase. Returns the metadata written beside the model."""
    started = time.monotonic() if started is None else started
    deadline = started + hp.max_training_time - export_reserve(hp.max_training_time)  # then evaluate, export
    cluster = start(env, hp)
    timer = Stopwatch()
    data = load_data(env, hp, timer)
    folders = job_folders(env, cluster.plan)
    reset_stale_checkpoints(folders.checkpoints, data.version, hp)
    clf = build_model(hp, cluster, data.num_classes)
    warm = warm_start(clf.full, incremental.source(hp), data.labels)  # production's weights when the pipeline passes them
    hp = incremental.schedule(hp, warm)  # a warm-started run trains a shorter schedule
    progress = track_progress(folders.tensorboard, deadline, cluster)

    # Backbone features of photos seen before with the same weights are read, not computed: phase 1's (of the
    # backbone it starts from), and calibration's of the final one, which the next warm start starts from.
    with feature_cache.opened(hp.preset, hp.resolved_image_size(), "phase 1"):
        head = train_head(clf, data, hp, cluster, folders.checkpoints, progress, timer,
                          mirrored=not started_warm(warm))
        find_label_issues(clf, data, hp, head, env.output_data_dir / VALIDATION_REPORT, timer)
    fine_tuned = fine_tune(clf, data, hp, cluster, head, folders.checkpoints, progress, timer)
    with feature_cache.opened(hp.preset, hp.resolved_image_size(), "calibration"):
        calibrated = calibrate(clf, data, hp.batch_size, timer)
    scores = evaluate(calibrated, data, folders.tensorboard, len(progress.history), timer)
    metadata = describe(env, hp, cluster, data, scores, calibrated, head, fine_tuned, warm, progress, timer)
    metadata["training"]["start_from"] = incremental.record(warm, hp)  # which start, and why
    export(calibrated.model, folders.model, data.labels, timer)
    timer.laps["total"] = round(time.monotonic() - started, 1)
    (folders.model / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")  # holds timer.laps itself
    folders.clean_up()
    print(f"model written to {folders.model} in {time.monotonic() - started:.1f}s", flush=True)
    return metadata


def start(env: JobEnvironment, hp: Hyperparameters) -> Cluster:
    """The distribution strategy, mixed precision on a GPU, and the seed (a CPU run is reproducible bit for bit)."""
    plan, strategy = distribute.strategy_for(env.hosts, env.current_host, env.cpu_devices)
    import keras
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(hp.seed)
    cluster = Cluster(plan, strategy)
    print(f"strategy={plan.kind} replicas={cluster.replicas} preset={hp.preset} image_size={hp.resolved_image_size()}",
          flush=True)
    return cluster


def load_data(env: JobEnvironment, hp: Hyperparameters, timer: Stopwatch) -> SplitData:
    """Scan, split and decode the `training` channel, write validation.json, and pick the split for each role."""
    from training import class_balance

    data = ds.load(env.training_dir, hp.resolved_image_size(), hp.splits, hp.min_images_per_class)
    report = data.report()
    per_class = [report["classes"][label] for label in data.labels]
    balance = class_balance.report(data.labels, [c["train"] for c in per_class], [c["total"] for c in per_class],
                                   hp.class_weights)
    ds.write_report(dict(report, class_balance=balance), env.output_data_dir / VALIDATION_REPORT)
    print(f"class balance: {balance['status']}", flush=True)
    class_weight = class_balance.weights([c["train"] for c in per_class]) if hp.class_weights else None
    counts = {name: len(split.paths) for name, split in data.splits.items()}
    print(f"dataset version={data.scan.version} layout={data.scan.layout} classes={len(data.labels)} "
          f"train={counts['train']} validation={counts['validation']} test={counts['test']} "
          f"skipped={len(data.skipped)} decode_seconds={timer.lap('decode'):.1f}", flush=True)
    validated_on = "validation"
    if not len(data.splits["validation"].paths):  # a tiny data set: early stopping watches the test split instead
        validated_on = "test" if len(data.splits["test"].paths) else "train"
        print(f"the validation split is empty: validating on the {validated_on} split", flush=True)
    evaluated_on = "test" if len(data.splits["test"].paths) else "validation"
    return SplitData(data.labels, data.splits["train"], data.splits[validated_on], validated_on,
                     data.splits[evaluated_on], evaluated_on, data.scan.version, counts, class_weight)


def job_folders(env: JobEnvironment, plan: distribute.Plan) -> Folders:
    """The job's model, TensorBoard and checkpoint folders on the chief; throwaway ones elsewhere."""
    if plan.is_chief:
        return Folders(env.model_dir, str(env.tensorboard_dir), env.checkpoint_dir, throwaway=None)
    scratch = Path(tempfile.mkdtemp(prefix="flowers-worker-"))
    return Folders(scratch / "model", str(scratch / "tensorboard"), scratch / "checkpoints", throwaway=scratch)


def build_model(hp: Hyperparameters, cluster: Cluster, num_classes: int) -> Classifier:
    """The preset's backbone (frozen) and a new softmax head, as the models training.model describes."""
    from training.model import build, prepare_multi_worker

    with cluster.strategy.scope():
        clf = build(PRESETS[hp.preset], hp.resolved_weights(), hp.resolved_image_size(), num_classes, hp.dropout)
    if cluster.multi_worker:
        prepare_multi_worker(clf.head)
        prepare_multi_worker(clf.full)
    return clf


def track_progress(log_dir: str, deadline: float, cluster: Cluster) -> Progress:
    """An empty history, TensorBoard logs in `log_dir`, and a time budget that stops training at `deadline`."""
    import keras

    from training import callbacks as cb

    tensorboard = keras.callbacks.TensorBoard(log_dir=log_dir, histogram_freq=0, write_graph=False, profile_batch=0)
    budget = cb.TimeBudget(deadline, cluster.strategy if cluster.multi_worker else None)
    return Progress([], tensorboard, budget)


def train_head(clf: Classifier, data: SplitData, hp: Hyperparameters, cluster: Cluster, ckpt_dir: Path,
               progress: Progress, timer: Stopwatch, mirrored: bool = True) -> Head:
    """Phase 1: the head on backbone features computed once (the backbone never runs per epoch here).
    `mirrored`: also on the mirror images' features (when hp.augmentation; see _head_training_set).

    Its weights are checkpointed: a restarted job (same data and hyperparameters) loads them
    instead of training again. Returns the head's validation score, the baseline of phase 2.
    """
    import keras

    from training import callbacks as cb

    head_ckpt, head_json = ckpt_dir / "head.weights.h5", ckpt_dir / "head.json"
    resumed = head_ckpt.exists() and head_json.exists()
    features = None
    if resumed:
        clf.head.load_weights(head_ckpt)
        epochs = json.loads(head_json.read_text())["epochs"]
        print(f"resumed: head weights from {head_ckpt} ({epochs} epochs)", flush=True)
        val_features = _features(clf.extractor, data.validation.images, hp.batch_size)
    else:
        timer.lap("setup")
        train_features, train_targets = _head_training_set(clf.extractor, data, hp, mirrored)
        val_features = _features(clf.extractor, data.validation.images, hp.batch_size)
        features = {"train": train_features[: len(data.train.paths)], data.validated_on: val_features}
        timer.lap("features")
        with cluster.strategy.scope():
            clf.head.compile(optimizer=keras.optimizers.Adam(hp.learning_rate), loss=_loss(hp), metrics=["accuracy"])
            fit = clf.head.fit(
                _batches(train_features, train_targets, hp, cluster, shuffle=True),
                validation_data=_batches(val_features, data.onehot(data.validation), hp, cluster),
                epochs=hp.head_epochs,
                shuffle=False,  # the tf.data pipeline shuffles
                class_weight=data.class_weight,
                verbose=0,
                callbacks=[
                    cb.MetricLines("head", hp.head_epochs, history=progress.history),
                    progress.tensorboard,
                    keras.callbacks.EarlyStopping(monitor="val_loss", patience=hp.patience, restore_best_weights=True),
                    progress.budget,
                ],
            )
        epochs = len(fit.history.get("loss", []))
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        clf.head.save_weights(head_ckpt)
        head_json.write_text(json.dumps({"epochs": epochs}))
    timer.lap("head")
    probabilities = clf.head.predict(val_features, batch_size=hp.batch_size, verbose=0)
    labels = data.validation.labels
    accuracy = _top1(probabilities, labels)
    loss = float(_loss(hp)(data.onehot(data.validation), probabilities)) if len(labels) else float("inf")
    print(format_metric_line({"val_accuracy": accuracy, "val_loss": loss}, phase="head", result="best"), flush=True)
    return Head(epochs, resumed, accuracy, loss, features)


def _head_training_set(extractor: keras.Model, data: SplitData, hp: Hyperparameters,
                       mirrored: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Features and one-hot targets of the training photos the head learns from."""
    import numpy as np

    features = _features(extractor, data.train.images, hp.batch_size)
    targets = data.onehot(data.train)
    if hp.augmentation and mirrored:
        # The mirror image is the one augmentation that costs nothing per epoch: its
        # features are computed once too, doubling what the head learns from. Not after a
        # warm start: its head learnt them already, and its short refit reads every photo
        # seen before from the feature cache (calibration wrote them), mirror images excepted.
        flipped = _features(extractor, data.train.images[:, :, ::-1], hp.batch_size)
        features = np.concatenate([features, flipped])
        targets = np.concatenate([targets, targets])
    return features, targets


def find_label_issues(clf: Classifier, data: SplitData, hp: Hyperparameters, head: Head, report: Path,
                      timer: Stopwatch) -> None:
    """Likely mislabelled photos among all of them (training.label_issues), on phase 1's backbone features
    (those train_head computed, the rest now, before fine-tuning changes the backbone), added to
    validation.json. Suggestions only: no photo is relabelled or dropped. A failure here is logged and
    reported, never the run's."""
    import numpy as np

    from training import label_issues

    splits = {"train": data.train, data.validated_on: data.validation, data.evaluated_on: data.test}
    try:
        cached = head.features or {}
        features = [cached[name] if name in cached else _features(clf.extractor, split.images, hp.batch_size)
                    for name, split in splits.items()]
        found = label_issues.find(np.concatenate(features), np.concatenate([s.labels for s in splits.values()]),
                                  [p for s in splits.values() for p in s.paths], data.labels, seed=hp.seed)
    except Exception as exc:  # a suggestion must never cost the model
        traceback.print_exc()
        found = {"count": 0, "issues": [], "skipped": f"internal error: {type(exc).__name__}: {exc}"}
    try:
        document = json.loads(report.read_text())
        report.write_text(json.dumps(dict(document, label_issues=found), indent=2) + "\n")
    except (OSError, ValueError) as exc:
        print(f"cannot add the label issues to {report}: {exc}", file=sys.stderr, flush=True)
    seconds = timer.lap("label_issues")
    print(f"phase=label_issues flagged={found['count']} seconds={seconds:.1f}"
          + (f" skipped={found['skipped']!r}" if found.get("skipped") else ""), flush=True)


def fine_tune(clf: Classifier, data: SplitData, hp: Hyperparameters, cluster: Cluster, head: Head, ckpt_dir: Path,
              progress: Progress, timer: Stopwatch) -> bool:
    """Phase 2: fine-tune the top of the backbone on augmented photos, decaying learning rate.

    Skipped when there are no epochs or layers to fine-tune, or no time left. Returns whether
    an epoch beat the head; when none does, the phase-1 weights stay.
    """
    import keras

    from training import callbacks as cb
    from training import device_augment
    from training.model import prepare_multi_worker, unfreeze_top

    layers = hp.resolved_fine_tune_layers()
    fine_tuned = False
    if hp.epochs > 0 and layers > 0 and not progress.out_of_time():
        augment_on = device_augment.where(hp.augment_on, hp.augmentation)  # device, cpu or none
        feed = "device" if augment_on == "device" else "cpu"
        print(f"augment_on={augment_on}", flush=True)
        with cluster.strategy.scope():
            unfrozen = unfreeze_top(clf.backbone, layers)
            steps = max(1, -(-len(data.train.paths) // cluster.global_batch(hp.batch_size)))
            # One epoch of linear warm-up: a fresh Adam's first steps would otherwise jolt the
            # pretrained weights (validation accuracy dips well below the head's), then cosine decay.
            peak = hp.learning_rate * hp.resolved_fine_tune_lr_scale()
            schedule = keras.optimizers.schedules.CosineDecay(
                peak / 10, decay_steps=steps * hp.epochs, alpha=0.05, warmup_target=peak, warmup_steps=steps)
            # Augmenting on the device, fit() trains a wrapper whose step augments, with clf.full's own
            # weights (the callbacks save and restore those); clf.full, exported, holds no augmentation.
            trainer = device_augment.wrap(clf.full) if feed == "device" else clf.full
            if feed == "device" and cluster.multi_worker:
                prepare_multi_worker(trainer)
            trainer.compile(optimizer=keras.optimizers.Adam(schedule), loss=_loss(hp), metrics=["accuracy"])
            print(f"fine-tuning {unfrozen} layers with weights for {hp.epochs} epochs", flush=True)
            best = cb.RestoreBest((head.val_accuracy, head.val_loss), len(data.validation.labels), hp.patience,
                                  start_from_epoch=hp.epochs // 2)
            trainer.fit(
                _batches(data.train.images, data.onehot(data.train), hp, cluster, shuffle=True,
                         augment=hp.augmentation, repeat=True, augment_on=feed),
                steps_per_epoch=steps,
                validation_data=_batches(data.validation.images, data.onehot(data.validation), hp, cluster,
                                         augment_on=feed),
                initial_epoch=head.epochs,  # epochs count on from phase 1's, in the metric lines and TensorBoard
                epochs=head.epochs + hp.epochs,
                shuffle=False,
                class_weight=data.class_weight,
                verbose=0,
                callbacks=[
                    # A job killed here (a reclaimed spot instance) goes on from its last epoch when restarted.
                    keras.callbacks.BackupAndRestore(str(ckpt_dir / "fine_tune"), delete_checkpoint=True),
                    cb.MetricLines("fine_tune", head.epochs + hp.epochs, history=progress.history),
                    progress.tensorboard,
                    best,  # early stopping on validation accuracy, restoring the best epoch's weights
                    progress.budget,
                ],
            )
        fine_tuned = best.improved
    timer.lap("fine_tune")
    return fine_tuned


def calibrate(clf: Classifier, data: SplitData, batch_size: int, timer: Stopwatch) -> Calibrated:
    """Temperature scaling, the familiarity gate and the "not a flower" threshold.

    The temperature T minimises the validation NLL of softmax(logits / T) (the top class never
    changes); the exported model divides the head's logits by T before its softmax. The familiarity
    gate (training.familiarity) is fitted on the training photos' features and placed with the
    validation photos'; the exported model multiplies its scores by it. The threshold is the highest
    top score so exported that refuses at most 5 % of the validation photos (those of an `other`
    class excepted, which are refused by their class).
    """
    import numpy as np

    from training import calibration, familiarity
    from training.model import calibrated

    kernel, bias = clf.head.get_layer("predictions").get_weights()
    features = {name: _features(clf.extractor, split.images, batch_size)
                for name, split in (("train", data.train), ("validation", data.validation), ("test", data.test))}
    val_logits, test_logits = (features[name].astype(np.float64) @ kernel + bias for name in ("validation", "test"))
    temperature = calibration.fit_temperature(val_logits, data.validation.labels)
    gate = familiarity.fit(features["train"], data.train.labels, features["validation"], data.validation.labels,
                           data.labels)

    def exported_scores(name: str, logits: np.ndarray) -> np.ndarray:
        scores = calibration.softmax(logits / temperature)
        return scores if gate is None else scores * gate.factor(features[name])[:, None]

    val_scores, test_scores = exported_scores("validation", val_logits), exported_scores("test", test_logits)
    exported = calibrated(clf, temperature, None if gate is None else gate.constants())
    threshold = calibration.choose_threshold(val_scores, data.validation.labels, data.labels)
    refused = calibration.refused(val_scores, threshold, data.labels)
    flowers = np.ones(len(refused), bool)
    if calibration.OTHER in data.labels:
        flowers = data.validation.labels != data.labels.index(calibration.OTHER)
    summary = {
        "temperature": temperature,
        "fitted_on": data.validated_on,
        "count": int(len(val_logits)),
        "val_nll_before": calibration.nll(val_logits, data.validation.labels),
        "val_nll_after": calibration.nll(val_logits, data.validation.labels, temperature),
        "threshold_rule": f"highest top score refusing at most {calibration.MAX_REFUSED:.0%} of the "
                          f"{data.validated_on} photos",
        "val_refused": float(refused[flowers].mean()) if flowers.any() else 0.0,
        "background_class": calibration.OTHER if calibration.OTHER in data.labels else None,
        "familiarity": None if gate is None else gate.summary(gate.distance(features["validation"][flowers])),
    }
    print(f"phase=calibrate temperature={temperature:.4f} threshold={threshold:.4f} "
          f"val_refused={summary['val_refused']:.4f} familiarity_gate={'yes' if gate else 'no'}", flush=True)
    timer.lap("calibrate")
    return Calibrated(exported, temperature, threshold, summary, val_logits, test_logits, test_scores)


def evaluate(calibrated: Calibrated, data: SplitData, log_dir: str, step: int, timer: Stopwatch) -> Scores:
    """Metrics of the final model on the test split (the validation split when the data set is too small
    for one), also written to TensorBoard at `step`, and its accuracy on the validation split; ECE (15 bins)
    of the scores before calibration and of the scores the model answers with."""
    from training import calibration, evaluation

    scores = calibrated.test_scores
    metrics = evaluation.classification_metrics(data.test.labels, scores.argmax(axis=1), data.labels)
    metrics["ece_uncalibrated"] = calibration.expected_calibration_error(
        calibration.softmax(calibrated.test_logits), data.test.labels)
    metrics["ece"] = calibration.expected_calibration_error(scores, data.test.labels)
    metrics["refused"] = float(calibration.refused(scores, calibrated.threshold, data.labels).mean()) if len(scores) else 0.0
    val_accuracy = _top1(calibrated.validation_logits, data.validation.labels)
    evaluation.log_to_tensorboard(log_dir, metrics, data.labels, step=step)
    print(format_metric_line({"test_accuracy": metrics["accuracy"], "val_accuracy": val_accuracy}, result="final"),
          flush=True)
    timer.lap("evaluate")
    return Scores(metrics, val_accuracy)


def describe(env: JobEnvironment, hp: Hyperparameters, cluster: Cluster, data: SplitData, scores: Scores,
             calibrated: Calibrated, head: Head, fine_tuned: bool, warm: str, progress: Progress,
             timer: Stopwatch) -> dict[str, Any]:
    """metadata.json: what the model takes in, how it was trained and how it scored."""
    from training import device_augment

    preset = PRESETS[hp.preset]
    size = hp.resolved_image_size()
    return {
        "labels": data.labels,
        "preset": preset.name,
        "image_size": size,
        "input": {"shape": [1, size, size, 3], "dtype": "float32", "range": [0, 255]},
        "preprocessing": dict(PREPROCESSING, model=preset.preprocessing),
        "hyperparameters": hp.as_dict(),
        "dataset_version": data.version,
        "dataset_counts": data.counts,
        "metrics": {"val_accuracy": scores.val_accuracy, "validated_on": data.validated_on,
                    "test": dict(scores.test, evaluated_on=data.evaluated_on)},
        # The served model answers `label: null` ("not recognised") when its top score is below this.
        "threshold": calibrated.threshold,
        "calibration": calibrated.summary,
        "training": {
            "strategy": cluster.plan.kind,
            "replicas": cluster.replicas,
            "head_epochs": head.epochs,
            "resumed": head.resumed,
            "fine_tuned": fine_tuned,
            "augment_on": device_augment.where(hp.augment_on, hp.augmentation),  # device, cpu or none: where it ran
            "warm_start": warm,
            "stopped_by_time_budget": progress.budget.expired,
            "seconds": timer.laps,  # the dict itself: the export's lap and the total are still to come
            "history": progress.history,
        },
        "source_job": env.job_name,
        # The run's manifest: the exact list of files the pipeline gave this job (the registry records it too).
        "manifest": {"uri": env.manifest_uri, "sha256": env.manifest_sha256} if env.manifest_uri else None,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def export(full: keras.Model, model_dir: Path, labels: list[str], timer: Stopwatch) -> None:
    """The model files; metadata.json is written after, once the export's time is known."""
    model_dir.mkdir(parents=True, exist_ok=True)
    saved = model_dir / SAVED_MODEL_DIR
    if saved.exists():
        shutil.rmtree(saved)
    full.export(str(saved), verbose=False)
    full.save(model_dir / KERAS_FILE)
    (model_dir / LABELS_FILE).write_text("\n".join(labels) + "\n")
    timer.lap("export")


def _loss(hp: Hyperparameters) -> keras.losses.Loss:
    import keras

    return keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing)


def _batches(x: np.ndarray, y: np.ndarray, hp: Hyperparameters, cluster: Cluster, *, shuffle: bool = False,
             augment: bool = False, repeat: bool = False, augment_on: str = "cpu") -> tf.data.Dataset:
    """The input pipeline for (x, y): `hp.batch_size` photos per replica, shuffled with the run's seed;
    `augment_on="device"` feeds `device_augment.wrap`'s model (input_pipeline.batches)."""
    from training import input_pipeline

    return input_pipeline.batches(x, y, cluster.global_batch(hp.batch_size), seed=hp.seed,
                                  shuffle=shuffle, augment=augment, repeat=repeat, augment_on=augment_on)


def _features(extractor: keras.Model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Pooled backbone features for every image (from the feature cache where it has them, when one is open)."""
    return feature_cache.features(extractor, images, lambda todo: _backbone_features(extractor, todo, batch_size))


def _backbone_features(extractor: keras.Model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Pooled backbone features for every image, in inference mode, batch by batch."""
    import numpy as np
    import tensorflow as tf

    if len(images) == 0:
        return np.zeros((0, extractor.output_shape[-1]), np.float32)
    spec = tf.TensorSpec([None, *images.shape[1:]], tf.float32)
    call = tf.function(lambda x: extractor(x, training=False), input_signature=[spec])
    out = [call(tf.cast(images[i : i + batch_size], tf.float32)).numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float32)


def _top1(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose most probable class is the label; 0 for no rows."""
    return float((probabilities.argmax(axis=1) == labels).mean()) if len(labels) else 0.0


def _fingerprint(dataset_version: str, hp: Hyperparameters) -> str:
    return hashlib.sha256(json.dumps([dataset_version, hp.as_dict()], sort_keys=True).encode()).hexdigest()[:16]


def reset_stale_checkpoints(ckpt_dir: Path, dataset_version: str, hp: Hyperparameters) -> None:
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


def warm_start(full: keras.Model, source: str, labels: list[str]) -> str:
    """Start from a previous model's weights when its classes and shapes match; say why not otherwise."""
    if not source:
        return ""
    import keras

    from training.model import GATE_LAYER
    from training.presets import custom_objects

    folder = Path(source)
    try:
        old_labels = (folder / LABELS_FILE).read_text().split("\n")
        old_labels = [label for label in old_labels if label]
        if not same_classes(old_labels, labels):
            outcome = skipped(CLASSES_DIFFER)
            print(f"warm start {outcome} ({old_labels} vs {labels})", flush=True)
            return outcome
        previous = keras.saving.load_model(folder / KERAS_FILE, custom_objects=custom_objects(), compile=False)
        # the trained weights; the familiarity gate's constants are fitted anew for every run
        full.set_weights([w for layer in previous.layers if layer.name != GATE_LAYER for w in layer.get_weights()])
    except (OSError, ValueError) as exc:
        outcome = skipped(str(exc))
        print(f"warm start {outcome}", flush=True)
        return outcome
    print(f"warm start from {folder}", flush=True)
    return str(folder)


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
    except (HyperparameterProblem, EnvironmentError_, WeightsUnavailable) as exc:
        fail(env, str(exc))
    except Exception as exc:  # anything else is a bug: keep the traceback in the log
        traceback.print_exc()
        fail(env, f"internal error: {type(exc).__name__}: {exc}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
