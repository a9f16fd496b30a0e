"""The training hyperparameters a run is given, checked in the Lambda before any job is started.

Three layers, later ones win: the settings' `preset` and `max_training_time`; the deployment's defaults
(`Settings.hyperparameters`: the HYPERPARAMETERS variable, from the CDK context value `hyperparameters`);
and `training.json`, a JSON object beside the data set (`s3://DATASET_BUCKET/datasets/flowers/training.json`,
locally `HOME/bucket/training.json`), read when the run starts. Keys and ranges are the README's table, the
same as training/hyperparameters.py checks in the job (a test holds the two to the same answers), so a bad
value fails the run here, with its reason in GET /status, and no instance is paid for. `training.json` is
not a photo or a label: changing it starts no run (`flowers retrain` does).
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, Mapping

from chalicelib.contract.training_job import PRESET_NAMES

FILE_NAME = "training.json"
MAX_RUNTIME = 28 * 24 * 3600  # SageMaker's longest MaxRuntimeInSeconds


class HyperparameterProblem(ValueError):
    """Bad hyperparameters; the message lists every problem."""


def _int(low: int, high: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        number = float(str(value).strip())
        if not number.is_integer() or not low <= number <= high:
            raise ValueError(f"expected an integer from {low} to {high}, got {value!r}")
        return str(int(number))

    return check


def _float(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        number = float(str(value).strip())
        if (math.isnan(number) or number < low or number > high or (low_open and number == low)
                or (high_open and number == high)):
            raise ValueError(f"expected a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}, got {value!r}")
        return repr(number)

    return check


def _bool(value: Any) -> str:
    lowered = str(value).strip().lower()
    if value is True or lowered in ("true", "1", "yes", "on"):
        return "true"
    if value is False or lowered in ("false", "0", "no", "off"):
        return "false"
    raise ValueError(f"expected true or false, got {value!r}")


def _preset(value: Any) -> str:
    if value not in PRESET_NAMES:
        raise ValueError(f"expected one of {', '.join(PRESET_NAMES)}, got {value!r}")
    return str(value)


def _weights(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 1000:
        raise ValueError(f"expected imagenet, none or a weights file in the training image, got {value!r}")
    return value.strip()


def _image_size(value: Any) -> str:
    size = _int(0, 1024)(value)
    if size != "0" and int(size) < 32:
        raise ValueError(f"expected 0 (the preset's) or 32 to 1024, got {value!r}")
    return size


def _splits(value: Any) -> str:
    text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    parts = [p for p in text.replace("/", ",").replace(":", ",").split(",") if p.strip()]
    if len(parts) != 3:
        raise ValueError(f"expected three parts like 80/10/10, got {value!r}")
    numbers = [float(p) for p in parts]
    if any(math.isnan(n) or n < 0 for n in numbers) or numbers[0] <= 0 or numbers[1] <= 0:
        raise ValueError(f"expected non-negative parts, train and validation positive, got {value!r}")
    return "/".join(parts)


def _augment_on(value: Any) -> str:
    if value not in ("auto", "cpu", "device"):
        raise ValueError(f"expected auto, cpu or device, got {value!r}")
    return str(value)


# The README's table (and training/hyperparameters.py's fine_tune_lr_scale): name -> check, giving the string the job gets.
RULES: dict[str, Callable[[Any], str]] = {
    "preset": _preset,
    "weights": _weights,
    "epochs": _int(0, 1000),
    "head_epochs": _int(1, 1000),
    "batch_size": _int(1, 4096),
    "learning_rate": _float(0, 1, low_open=True),
    "fine_tune_lr_scale": _float(0, 1),
    "fine_tune_layers": _int(-1, 100_000),
    "image_size": _image_size,
    "augmentation": _bool,
    "label_smoothing": _float(0, 1, high_open=True),
    "dropout": _float(0, 1, high_open=True),
    "patience": _int(1, 1000),
    "seed": _int(0, 2**31 - 1),
    "max_training_time": _int(60, MAX_RUNTIME),
    "min_images_per_class": _int(1, 10_000_000),
    "splits": _splits,
    "warm_start": _weights,
    "class_weights": _bool,
    "augment_on": _augment_on,
}


def check(values: Mapping[str, Any], source: str) -> dict[str, str]:
    """The values as the job's strings; raises HyperparameterProblem naming `source` and every bad key."""
    if not isinstance(values, Mapping):
        raise HyperparameterProblem(f"{source}: expected a JSON object like {{\"epochs\": 8}}, got {type(values).__name__}")
    checked, problems = {}, []
    for name, value in values.items():
        rule = RULES.get(str(name))
        if rule is None:
            problems.append(f"unknown hyperparameter {name!r} (known: {', '.join(sorted(RULES))})")
            continue
        try:
            checked[str(name)] = rule(value)
        except (TypeError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise HyperparameterProblem(f"bad hyperparameters in {source}: " + "; ".join(problems))
    return checked


def parse_file(raw: bytes) -> dict[str, str]:
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise HyperparameterProblem(f"bad hyperparameters in {FILE_NAME}: not JSON ({exc})") from None
    return check(document, FILE_NAME)


def for_run(preset: str, max_training_time: int, defaults: Mapping[str, str], from_file: Mapping[str, str]) -> dict[str, str]:
    """What the job gets: the settings, then the deployment's defaults, then training.json."""
    return {"preset": preset, "max_training_time": str(max_training_time), **defaults, **from_file}
