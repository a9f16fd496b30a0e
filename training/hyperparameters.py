"""Training hyperparameters: SageMaker's string values parsed into typed fields.

Names, defaults and rules are the table's (chalicelib/contract/hyperparameters.py): the Lambda checks a run's
values with the same rules before any job starts. An unknown key or a bad value fails the job with one
message that lists every problem, before any data is read. What needs the presets is checked here on top.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from chalicelib.contract import hyperparameters as table
from training.presets import PRESETS

SOURCE = "hyperparameters.json"  # where the job reads them (training/environment.py)


def _default(name: str) -> Any:
    return table.typed(name, table.BY_NAME[name].default)


@dataclass(frozen=True)
class Hyperparameters:
    """One field per row of the table, in its order; the fields are spelt out for the type checker (the
    check below this class fails the import if they drift from the table)."""

    preset: str = _default("preset")
    weights: str = _default("weights")  # empty: imagenet where the preset has it (resolved_weights)
    epochs: int = _default("epochs")
    head_epochs: int = _default("head_epochs")
    batch_size: int = _default("batch_size")
    learning_rate: float = _default("learning_rate")
    fine_tune_lr_scale: float = _default("fine_tune_lr_scale")  # 0: the preset's
    fine_tune_layers: int = _default("fine_tune_layers")  # -1: the preset's
    image_size: int = _default("image_size")  # 0: the preset's
    seed: int = _default("seed")
    augmentation: bool = _default("augmentation")
    label_smoothing: float = _default("label_smoothing")
    dropout: float = _default("dropout")
    patience: int = _default("patience")
    max_training_time: int = _default("max_training_time")
    min_images_per_class: int = _default("min_images_per_class")
    splits: tuple[float, float, float] = _default("splits")
    warm_start: str = _default("warm_start")  # acted on by training/incremental.py (chalicelib/contract/warm_start.py decides)
    class_weights: bool = _default("class_weights")
    augment_on: str = _default("augment_on")

    def resolved_image_size(self) -> int:
        return self.image_size or PRESETS[self.preset].image_size

    def resolved_fine_tune_layers(self) -> int:
        return PRESETS[self.preset].fine_tune_layers if self.fine_tune_layers < 0 else self.fine_tune_layers

    def resolved_fine_tune_lr_scale(self) -> float:
        return self.fine_tune_lr_scale or PRESETS[self.preset].fine_tune_lr_scale

    def resolved_weights(self) -> str | None:
        """'imagenet', None (random init) or a weights file path (whether it exists: training/presets.py's backbone)."""
        choice = self.weights or ("imagenet" if PRESETS[self.preset].has_imagenet_weights else "none")
        if choice.lower() == "none":
            return None
        return "imagenet" if choice.lower() == "imagenet" else choice

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["splits"] = list(self.splits)
        return values


_FIELDS = [(f.name, f.type) for f in dataclasses.fields(Hyperparameters)]
if _FIELDS != [(h.name, h.type_name) for h in table.TABLE]:
    raise TypeError(f"Hyperparameters' fields {_FIELDS} are not the table's (chalicelib/contract/hyperparameters.py)")


def parse(raw: Mapping[str, Any]) -> Hyperparameters:
    """Build Hyperparameters from a mapping of (possibly string) values; raise HyperparameterProblem (the table's) on any problem."""
    own = {name: value for name, value in raw.items() if not str(name).startswith(table.PLATFORM_PREFIXES)}
    good, problems = table.checked(own)
    values = {name: table.typed(name, text) for name, text in good.items()}
    if "preset" in values or "preset" not in own:  # a bad preset is a problem already
        problems += table.combined_problems(good)
    if problems:
        raise table.problem(SOURCE, problems)
    return Hyperparameters(**values)
