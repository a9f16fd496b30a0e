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
# A data set's optional background class (photos that are none of the classes): trained like any
# class, and a prediction whose top class it is answers `label: null`, like one below the threshold.
BACKGROUND_LABEL = "other"


def not_recognised(top_label: str, top_score: float, threshold: float | None) -> bool:
    """The "not a flower" rule, for the server (`label: null`) and for training's threshold alike:
    the top class is the background class, or its score is below the model's threshold."""
    return top_label == BACKGROUND_LABEL or (threshold is not None and top_score < threshold)

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

# For the Lambdas: each preset's name and whether it has ImageNet weights (the one preset fact a hyperparameter
# rule needs), so the Lambdas check PRESET and the hyperparameters as training does without importing training/
# (which is not in the Lambda zip). A test keeps it equal to training.presets.
IMAGENET_WEIGHTS = {"mobilenet_v2": True, "resnet_v1_50": True, "efficientnet_lite0": True, "efficientnet_lite1": True,
                    "efficientnet_lite2": True, "tiny_cnn": False}
PRESET_NAMES = tuple(IMAGENET_WEIGHTS)
# The run's manifest (chalicelib/pipeline/manifest.py), handed to the training job in its environment:
# training writes both into metadata.json ("manifest"), and the conversion keeps them.
MANIFEST_URI_ENV = "FLOWERS_MANIFEST_URI"
MANIFEST_SHA256_ENV = "FLOWERS_MANIFEST_SHA256"
