"""Keras callbacks the training recipe needs beyond Keras' own."""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import keras

from chalicelib.contract.training_job import format_metric_line

if TYPE_CHECKING:
    import tensorflow as tf


class TimeBudget(keras.callbacks.Callback):
    """Stop training cleanly at a wall-clock deadline.

    One host: checked after every batch. Several workers must stop at the same step or the
    others hang in a collective, so there the check is made at epoch ends and agreed on
    (any worker out of time stops them all).
    """

    def __init__(self, deadline: float, multi_worker_strategy: tf.distribute.Strategy | None = None) -> None:
        super().__init__()
        self.deadline = deadline
        self.strategy = multi_worker_strategy
        self.expired = False

    def _out_of_time(self) -> bool:
        late = time.monotonic() >= self.deadline
        if self.strategy is None:
            return late
        import tensorflow as tf

        flags = self.strategy.run(lambda: tf.constant(1.0 if late else 0.0))
        return float(self.strategy.reduce("SUM", flags, axis=None)) > 0

    def _check(self) -> None:
        if self._out_of_time():
            self.expired = True
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        if self.strategy is None:
            self._check()

    def on_epoch_begin(self, epoch, logs=None):
        if self.strategy is None:
            self._check()

    def on_epoch_end(self, epoch, logs=None):
        if self.strategy is not None:
            self._check()


def standard_error(accuracy: float, count: int) -> float:
    """How much an accuracy measured on `count` photos moves by chance alone."""
    return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / count) if count else 0.0


def best_epoch(scores: list[tuple[float, float]], validation_size: int) -> int:
    """Index of the best (val_accuracy, val_loss) pair: early stopping's choice on a noisy split.

    The highest validation accuracy wins, but accuracies within one standard error of it
    count as a tie, and a tie goes to the lowest validation loss. On a small validation
    split (139 photos: one photo is 0.7 point) the plain maximum mostly picks luck: an
    epoch two photos "better" that is still half-trained. The loss, which every photo's
    probabilities move, breaks the tie. On a large split the tolerance shrinks to nothing.
    """
    if not scores:
        raise ValueError("no epochs to choose from")
    top = max(accuracy for accuracy, _ in scores)
    floor = top - standard_error(top, validation_size) - 1e-9
    tied = [i for i, (accuracy, _) in enumerate(scores) if accuracy >= floor]
    return min(tied, key=lambda i: (scores[i][1], -scores[i][0], -i))


class RestoreBest(keras.callbacks.Callback):
    """Early stopping on validation accuracy that restores the best epoch's weights (see `best_epoch`).

    `baseline` is the (val_accuracy, val_loss) the starting weights already reach (the head
    trained in phase 1): fine-tuning that never beats it leaves the phase-1 model in place.
    Training stops once the best epoch is `patience` epochs old, but not before
    `start_from_epoch` epochs: the first ones, while the learning rate is high, rarely beat a
    converged head, and stopping there would throw fine-tuning away. Only weights that could
    still win are kept: an epoch that another matches or beats on both accuracy and loss never can.
    """

    def __init__(self, baseline: tuple[float, float], validation_size: int, patience: int, start_from_epoch: int = 0):
        super().__init__()
        self.validation_size = validation_size
        self.patience = patience
        self.start_from_epoch = start_from_epoch
        accuracy, loss = baseline
        self.scores: list[tuple[float, float]] = [(accuracy, loss)]
        self.kept: dict[int, list] = {}
        self.best = 0

    def on_train_begin(self, logs=None):
        self.kept = {0: self.model.get_weights()}

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if "val_accuracy" not in logs or "val_loss" not in logs:
            return
        self.scores.append((float(logs["val_accuracy"]), float(logs["val_loss"])))
        index = len(self.scores) - 1
        self.kept[index] = self.model.get_weights()
        self.kept = {i: w for i, w in self.kept.items() if not self._dominated(i)}
        self.best = best_epoch(self.scores, self.validation_size)
        if index - self.best >= self.patience and index >= self.start_from_epoch:
            self.model.stop_training = True

    @property
    def improved(self) -> bool:
        """Whether a fine-tuned epoch beat the starting weights."""
        return self.best > 0

    def _dominated(self, i: int) -> bool:
        """Another epoch as accurate with no higher loss (a later one, on an exact tie) always wins over i."""
        accuracy, loss = self.scores[i]
        for j, (other_accuracy, other_loss) in enumerate(self.scores):
            if j == i or other_accuracy < accuracy or other_loss > loss:
                continue
            if (other_accuracy, other_loss) != (accuracy, loss) or j > i:
                return True
        return False

    def on_train_end(self, logs=None):
        if self.best in self.kept:
            self.model.set_weights(self.kept[self.best])


class MetricLines(keras.callbacks.Callback):
    """Print one `name=value` line per epoch: SageMaker metric definitions and local mode read them."""

    def __init__(self, phase: str, total_epochs: int, epoch_offset: int = 0, history: list | None = None):
        super().__init__()
        self.phase = phase
        self.total_epochs = total_epochs
        self.epoch_offset = epoch_offset
        self.history = history if history is not None else []

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        record = {"phase": self.phase, "epoch": epoch + 1 + self.epoch_offset}
        record.update({k: float(v) for k, v in logs.items()})
        self.history.append(record)
        print(format_metric_line(logs, phase=self.phase, epoch=f"{epoch + 1}/{self.total_epochs}"), flush=True)
