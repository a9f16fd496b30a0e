"""Test-split metrics (overall, per class, confusion matrix) and their TensorBoard views."""
from __future__ import annotations

import numpy as np

from chalicelib.charts import confusion_matrix_png  # one drawing for TensorBoard and the web page


def classification_metrics(true: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    n = len(labels)
    matrix = np.zeros((n, n), np.int64)
    np.add.at(matrix, (true.astype(np.int64), predicted.astype(np.int64)), 1)
    per_class = {}
    for i, label in enumerate(labels):
        tp = int(matrix[i, i])
        predicted_i = int(matrix[:, i].sum())
        actual_i = int(matrix[i, :].sum())
        per_class[label] = {
            "precision": tp / predicted_i if predicted_i else 0.0,
            "recall": tp / actual_i if actual_i else 0.0,
            "support": actual_i,
        }
    total = int(matrix.sum())
    return {
        "accuracy": float(np.trace(matrix) / total) if total else 0.0,
        "count": total,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),  # rows: true label, columns: predicted
    }


def log_to_tensorboard(log_dir: str, metrics: dict, labels: list[str], step: int) -> None:
    """Confusion matrix image and per-class precision/recall, beside Keras' epoch scalars."""
    import tensorflow as tf

    png = confusion_matrix_png(metrics["confusion_matrix"], labels)
    image = tf.expand_dims(tf.io.decode_png(png, channels=3), 0)
    writer = tf.summary.create_file_writer(f"{log_dir}/test")
    with writer.as_default(step=step):
        tf.summary.image("confusion_matrix", image)
        tf.summary.scalar("accuracy", metrics["accuracy"])
        for label, values in metrics["per_class"].items():
            tf.summary.scalar(f"precision/{label}", values["precision"])
            tf.summary.scalar(f"recall/{label}", values["recall"])
    writer.flush()
    writer.close()
