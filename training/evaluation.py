"""Test-split metrics (overall, per class, confusion matrix) and their TensorBoard views."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


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


def confusion_matrix_png(matrix: list[list[int]], labels: list[str], cell: int = 48) -> bytes:
    """A plain picture of the confusion matrix (rows true, columns predicted), drawn with Pillow."""
    m = np.asarray(matrix, dtype=np.int64)
    n = len(labels)
    margin = 8 + 7 * max((len(label) for label in labels), default=1)
    size = (margin + n * cell + 8, margin + n * cell + 24)
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    row_totals = m.sum(axis=1, keepdims=True).clip(min=1)
    share = m / row_totals
    for r in range(n):
        draw.text((4, margin + r * cell + cell // 2 - 5), labels[r], fill="black")
        for c in range(n):
            shade = int(255 - 200 * share[r, c])
            x0, y0 = margin + c * cell, margin + r * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(shade, shade, 255), outline="grey")
            draw.text((x0 + cell // 2 - 6, y0 + cell // 2 - 5), str(m[r, c]), fill="black" if shade > 120 else "white")
    for c in range(n):
        x = margin + c * cell + 2
        draw.text((x, margin - 14 - (c % 2) * 12), labels[c][:8], fill="black")
    draw.text((margin, margin + n * cell + 6), "rows: true label, columns: predicted", fill="black")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


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
