"""Training hyperparameters: defaults, parsing of SageMaker's string values, validation.

An unknown key or a bad value fails the job with one message that lists every problem,
before any data is read.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Mapping

from training.presets import PRESETS


class HyperparameterError(ValueError):
    pass


@dataclass(frozen=True)
class Hyperparameters:
    preset: str = "mobilenet_v2"
    weights: str = ""  # imagenet | none | path to a weights file; empty: imagenet where the preset has it
    epochs: int = 6  # fine-tuning epochs (phase 2); 0 trains the head only
    head_epochs: int = 25  # epochs of the head on cached backbone features (phase 1)
    batch_size: int = 32
    learning_rate: float = 1e-3  # head; fine-tuning starts at learning_rate * fine_tune_lr_scale
    fine_tune_lr_scale: float = 0.0  # 0: the preset's choice
    fine_tune_layers: int = -1  # -1: the preset's choice; 0: no fine-tuning
    image_size: int = 0  # 0: the preset's input size
    seed: int = 1337
    augmentation: bool = True
    label_smoothing: float = 0.1
    dropout: float = 0.2
    patience: int = 3  # early stopping on val_accuracy
    max_training_time: int = 3600  # seconds for the whole run, export included
    min_images_per_class: int = 5
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)
    warm_start: str = ""  # a previous model directory; used when its classes match
    class_weights: bool = True  # inverse-frequency class weights when the classes are imbalanced (training.class_balance)
    augment_on: str = "auto"  # where augmentation runs: device (the training step's, auto with a GPU) or cpu (tf.data)

    def resolved_image_size(self) -> int:
        return self.image_size or PRESETS[self.preset].image_size

    def resolved_fine_tune_layers(self) -> int:
        return PRESETS[self.preset].fine_tune_layers if self.fine_tune_layers < 0 else self.fine_tune_layers

    def resolved_fine_tune_lr_scale(self) -> float:
        return self.fine_tune_lr_scale or PRESETS[self.preset].fine_tune_lr_scale

    def resolved_weights(self) -> str | None:
        """'imagenet', None (random init) or a weights file path."""
        choice = self.weights or ("imagenet" if PRESETS[self.preset].has_imagenet_weights else "none")
        if choice.lower() == "none":
            return None
        return "imagenet" if choice.lower() == "imagenet" else choice

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["splits"] = list(self.splits)
        return values


# SageMaker adds its own keys to hyperparameters.json (framework SDKs, automatic tuning).
_PLATFORM_PREFIXES = ("sagemaker_", "_tuning_objective_metric")


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_splits(text: str) -> tuple[float, float, float]:
    parts = [p for p in text.replace("/", ",").replace(":", ",").split(",") if p.strip()]
    if len(parts) != 3:
        raise ValueError(f"expected three parts like 80/10/10, got {text!r}")
    values = [float(p) for p in parts]
    total = sum(values)
    if any(v < 0 for v in values) or total <= 0:
        raise ValueError(f"parts must be non-negative, got {text!r}")
    train, validation, test = (v / total for v in values)
    if train <= 0 or validation <= 0:
        raise ValueError(f"train and validation parts must be positive, got {text!r}")
    return (train, validation, test)


def _convert(name: str, kind: Any, value: Any) -> Any:
    if isinstance(value, str) and kind is not str:
        value = value.strip()
    if kind is bool:
        return value if isinstance(value, bool) else _parse_bool(str(value))
    if kind is int:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        number = float(value)
        if not number.is_integer():
            raise ValueError(f"expected an integer, got {value!r}")
        return int(number)
    if kind is float:
        return float(value)
    if name == "splits":
        return _parse_splits(value if isinstance(value, str) else ",".join(str(v) for v in value))
    return str(value)


_KINDS = {"bool": bool, "int": int, "float": float, "str": str}

_RULES = {
    "epochs": lambda v: 0 <= v <= 1000,
    "head_epochs": lambda v: 1 <= v <= 1000,
    "batch_size": lambda v: 1 <= v <= 4096,
    "learning_rate": lambda v: 0 < v <= 1,
    "fine_tune_lr_scale": lambda v: 0 <= v <= 1,
    "fine_tune_layers": lambda v: v >= -1,
    "image_size": lambda v: v == 0 or 32 <= v <= 1024,
    "label_smoothing": lambda v: 0 <= v < 1,
    "dropout": lambda v: 0 <= v < 1,
    "patience": lambda v: v >= 1,
    "max_training_time": lambda v: v >= 1,
    "min_images_per_class": lambda v: v >= 1,
    "augment_on": lambda v: v in ("auto", "cpu", "device"),
}


def parse(raw: Mapping[str, Any]) -> Hyperparameters:
    """Build Hyperparameters from a mapping of (possibly string) values; raise on any problem."""
    fields = {f.name: f for f in dataclasses.fields(Hyperparameters)}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in raw.items():
        if name.startswith(_PLATFORM_PREFIXES):
            continue
        if name not in fields:
            problems.append(f"unknown hyperparameter {name!r} (known: {', '.join(sorted(fields))})")
            continue
        kind = _KINDS.get(str(fields[name].type), str)
        try:
            converted = _convert(name, kind, value)
        except (TypeError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        rule = _RULES.get(name)
        if rule and not rule(converted):
            problems.append(f"{name}: value {value!r} is out of range")
            continue
        values[name] = converted
    preset = values.get("preset", Hyperparameters.preset)
    if preset not in PRESETS:
        problems.append(f"preset: {preset!r} is not one of {sorted(PRESETS)}")
    elif PRESETS[preset].image_size_fixed and values.get("image_size", 0) not in (0, PRESETS[preset].image_size):
        problems.append(f"image_size: preset {preset} only takes {PRESETS[preset].image_size}")
    weights = values.get("weights", "")
    if preset in PRESETS and weights.lower() == "imagenet" and not PRESETS[preset].has_imagenet_weights:
        problems.append(f"weights: preset {preset} has no ImageNet weights; use none or a file")
    elif weights and weights.lower() not in ("imagenet", "none") and not os.path.isfile(weights):
        problems.append(f"weights: {weights!r} is neither imagenet, none nor an existing file")
    if problems:
        raise HyperparameterError("bad hyperparameters: " + "; ".join(problems))
    return Hyperparameters(**values)
