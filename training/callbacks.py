"""Keras callbacks the training recipe needs beyond Keras' own."""
from __future__ import annotations

import time

import keras

from chalicelib.training_contract import format_metric_line


class TimeBudget(keras.callbacks.Callback):
    """Stop training cleanly at a wall-clock deadline.

    One host: checked after every batch. Several workers must stop at the same step or the
    others hang in a collective, so there the check is made at epoch ends and agreed on
    (any worker out of time stops them all).
    """

    def __init__(self, deadline: float, multi_worker_strategy=None):
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


class RestoreBest(keras.callbacks.Callback):
    """Keep the weights of the best epoch by val_accuracy and restore them when training ends.

    `baseline` is the accuracy the starting weights already reach (the head trained in
    phase 1), so fine-tuning that never beats it leaves the phase-1 model in place.
    """

    def __init__(self, baseline: float = -1.0):
        super().__init__()
        self.best = baseline
        self.best_weights = None
        self.improved = False

    def on_train_begin(self, logs=None):
        self.best_weights = self.model.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_accuracy")
        if value is not None and value > self.best:
            self.best = float(value)
            self.best_weights = self.model.get_weights()
            self.improved = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


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
