"""Pictures the API serves and training logs: Pillow only (the Lambda zip has no TensorFlow and no
training/ package). `training.evaluation` re-exports `confusion_matrix_png` for TensorBoard."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


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
