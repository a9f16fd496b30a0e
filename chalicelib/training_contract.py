"""What the training image and the pipeline agree on: file names and metric lines.

The training job prints `name=value` lines; the pipeline hands `METRIC_DEFINITIONS` to
SageMaker, which scrapes the same lines from the job's log.
"""
from __future__ import annotations

import re

MODEL_FILE = "model.tflite"
LABELS_FILE = "labels.txt"
METADATA_FILE = "metadata.json"
SAVED_MODEL_DIR = "saved_model"
KERAS_FILE = "model.keras"
VALIDATION_REPORT = "validation.json"

METRIC_NAMES = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "test_accuracy")
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
METRIC_DEFINITIONS = [{"Name": name, "Regex": rf"(?:^|\s){name}={_NUMBER}"} for name in METRIC_NAMES]


def format_metric_line(metrics: dict[str, float], **context: object) -> str:
    """`epoch=3 phase=fine_tune loss=0.4100 val_accuracy=0.9312`: one line SageMaker can parse."""
    parts = [f"{key}={value}" for key, value in context.items()]
    parts += [f"{name}={float(value):.6g}" for name, value in metrics.items() if name in METRIC_NAMES]
    return " ".join(parts)


def parse_metric_line(line: str) -> dict[str, float]:
    found = {}
    for definition in METRIC_DEFINITIONS:
        match = re.search(definition["Regex"], line)
        if match:
            found[definition["Name"]] = float(match.group(1))
    return found
