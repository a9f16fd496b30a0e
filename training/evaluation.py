"""Test-split metrics (overall, per class, confusion matrix, most confused pairs) and their TensorBoard views."""
from __future__ import annotations

import numpy as np

from chalicelib.contract.charts import confusion_matrix_png  # one drawing for TensorBoard and the web page


CONFUSED_PAIRS = 5  # the most confused (true, predicted) pairs kept in the metrics


def classification_metrics(true: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, each class's precision, recall, F1 and support, the confusion matrix and its most
    confused pairs (true label, predicted label, count; largest first)."""
    n = len(labels)
    matrix = np.zeros((n, n), np.int64)
    np.add.at(matrix, (true.astype(np.int64), predicted.astype(np.int64)), 1)
    per_class = {}
    for i, label in enumerate(labels):
        tp = int(matrix[i, i])
        predicted_i = int(matrix[:, i].sum())
        actual_i = int(matrix[i, :].sum())
        precision = tp / predicted_i if predicted_i else 0.0
        recall = tp / actual_i if actual_i else 0.0
        per_class[label] = {
            "precision": precision,
            "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "support": actual_i,
        }
    total = int(matrix.sum())
    return {
        "accuracy": float(np.trace(matrix) / total) if total else 0.0,
        "count": total,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),  # rows: true label, columns: predicted
        "confused_pairs": most_confused(matrix, labels),
    }


def most_confused(matrix: np.ndarray, labels: list[str], limit: int = CONFUSED_PAIRS) -> list[dict]:
    """The off-diagonal cells with photos, largest first (ties by label order): which class is taken for which."""
    cells = [(int(matrix[i, j]), i, j) for i in range(len(labels)) for j in range(len(labels))
             if i != j and matrix[i, j] > 0]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [{"true": labels[i], "predicted": labels[j], "count": count} for count, i, j in cells[:limit]]


def per_class_text(metrics: dict) -> str:
    """The per-class table and the most confused pairs as Markdown (TensorBoard's text tab)."""
    rows = ["| class | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v.get('f1', 0.0):.3f} | {v['support']} |"
             for label, v in metrics["per_class"].items()]
    pairs = metrics.get("confused_pairs") or []
    rows += ["", "Most confused (true → predicted): " + (", ".join(
        f"{p['true']} → {p['predicted']} ({p['count']})" for p in pairs) if pairs else "none")]
    return "\n".join(rows)


def log_to_tensorboard(log_dir: str, metrics: dict, labels: list[str], step: int) -> None:
    """Confusion matrix image, per-class precision/recall/F1 scalars and the per-class table (text), beside
    Keras' epoch scalars."""
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
            tf.summary.scalar(f"f1/{label}", values["f1"])
        tf.summary.text("per_class", per_class_text(metrics))
    writer.flush()
    writer.close()
