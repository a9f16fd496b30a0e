"""Where a run starts from: the production model's weights (a warm start, with a shorter schedule) or
ImageNet's (a full run), and why. Every rule of that decision is here, pure; the orchestrator gathers the
pipeline's facts and calls `choose`, training gathers its own and calls the rules under "Training's side"
(training/incremental.py and training/train.py's warm_start only act on the answers: unpack, load, print, record).

A warm start needs a production model whose classes are the new data set's, its trained weights (the
training job's output) and a lineage short enough: every FULL_RETRAIN_EVERY-th run is a full one, so
warm starts never drift far from a from-scratch model. The lineage count travels with the models: a
run's metadata.json records `training.start_from.chain` (0 for a full run, production's + 1 for a warm
one), read back from the production model when the next run starts. The classes are the data set's class
folders; with name.jpg + name.txt labels they are not known without reading every label, so the warm
start is offered and training compares the classes (`same_classes`, the rule `choose` applies to class
folders) once it has read them, in any case, and starts from ImageNet when they differ after all (metadata
says "skipped: classes differ").
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.contract.vocabulary import StartKind

FORCED_FULL = "a full run forced by hand (flowers retrain --full)"  # the reason metadata.json and the API show
FORCED_BY_HYPERPARAMETER = "a full run forced by the warm_start hyperparameter (none)"
START_FROM_ENV = "FLOWERS_START_FROM"  # the decision, as JSON, in the training job's environment


@dataclass(frozen=True)
class StartFrom:
    kind: str  # StartKind: PRODUCTION (a warm start) or IMAGENET (a full run)
    reason: str
    chain: int = 0  # warm starts in a row up to and including this run; 0 for a full run
    production_version: str = ""
    model_uri: str = ""  # the production model's training output (a model.tar.gz or a folder); "" for a full run

    @property
    def warm(self) -> bool:
        return self.kind == StartKind.PRODUCTION

    def as_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "model_uri"}, sort_keys=True)


def dataset_classes(keys: list[str]) -> list[str]:
    """The class folders of a data set's photo keys (`roses/a.jpg` -> roses), sorted as training sorts its labels."""
    return sorted({key.split("/", 1)[0] for key in keys if "/" in key})


def choose(dataset_classes: list[str], production_version: str, production_metadata: dict[str, Any] | None,
           model_uri: str, full_retrain_every: int, warm_start_hyperparameter: str = "", *, forced_full: bool = False) -> StartFrom:
    """Warm start from production, or a full run, with the reason in plain words. `warm_start_hyperparameter`:
    the run's own `warm_start` (training.json, -H): "none" forces a full run, a folder is training's business.
    `forced_full`: this one run was forced full by hand (Running.full); it wins over everything, the
    hyperparameter included (training_hyperparameters keeps training from loading a folder it names)."""
    if forced_full:
        return StartFrom(StartKind.IMAGENET, FORCED_FULL)
    if forces_full(warm_start_hyperparameter):
        return StartFrom(StartKind.IMAGENET, FORCED_BY_HYPERPARAMETER)
    if warm_start_hyperparameter.strip():
        return StartFrom(StartKind.IMAGENET, f"the warm_start hyperparameter names its own model ({warm_start_hyperparameter.strip()})")
    if not production_version:
        return StartFrom(StartKind.IMAGENET, "no production model yet")
    if full_retrain_every <= 1:
        return StartFrom(StartKind.IMAGENET, "warm starts are off (FULL_RETRAIN_EVERY=1: every run is a full one)")
    if production_metadata is None:
        return StartFrom(StartKind.IMAGENET, f"production model {production_version} has no readable metadata.json")
    labels = [str(label) for label in production_metadata.get("labels") or []]
    if dataset_classes and not same_classes(labels, dataset_classes):
        added = sorted(set(dataset_classes) - set(labels))
        removed = sorted(set(labels) - set(dataset_classes))
        what = "; ".join(part for part in (f"added {', '.join(added)}" if added else "",
                                            f"removed {', '.join(removed)}" if removed else "") if part) or "their order differs"
        return StartFrom(StartKind.IMAGENET, f"classes differ from production model {production_version}'s ({what})")
    if not model_uri:
        return StartFrom(StartKind.IMAGENET, f"production model {production_version}'s trained weights are not available")
    previous = _chain(production_metadata)
    if previous + 1 >= full_retrain_every:
        return StartFrom(StartKind.IMAGENET, f"periodic full retrain: production model {production_version} ends {previous} warm "
                                     f"start(s) in a row, and every {full_retrain_every}th run is a full one (FULL_RETRAIN_EVERY)")
    same = (f"same classes as production model {production_version}" if dataset_classes else
            f"production model {production_version}; the classes are in name.txt labels, so training compares them")
    return StartFrom(StartKind.PRODUCTION, same, previous + 1,
                     production_version, model_uri)


def training_hyperparameters(hyperparameters: dict[str, str], forced_full: bool) -> dict[str, str]:
    """The hyperparameters the job gets. Training loads a folder the `warm_start` hyperparameter names whatever the
    pipeline decided (training/incremental.py's source), so a run forced full by hand says "none" instead; any other
    run, and a forced one without such a folder, keeps them as they are (its metadata then shows FORCED_FULL)."""
    named = hyperparameters.get("warm_start", "").strip()
    if forced_full and named and not forces_full(named):
        return {**hyperparameters, "warm_start": "none"}
    return hyperparameters


def forces_full(warm_start_hyperparameter: str) -> bool:
    """The `warm_start` hyperparameter's "none" (any case, any spaces): every run from ImageNet."""
    return warm_start_hyperparameter.strip().lower() == "none"


def same_classes(previous: list[str], current: list[str]) -> bool:
    """A model's weights fit a data set whose classes are its own, in the same order (the head's outputs are
    the sorted labels). The pipeline compares class folders (`choose`); training, the labels it read."""
    return previous == current


# Training's side -----------------------------------------------------------------------------------------
# The job is handed the decision (START_FROM_ENV), the production model's training output (the
# Channel.PRODUCTION channel) and its hyperparameters; these rules say what it makes of them. Its outcome, a string, is the
# folder it started from, "" for ImageNet, or `skipped(why)` when it could not load the folder
# (metadata.json's `training.warm_start`).

def folder_to_load(warm_start_hyperparameter: str, production_channel: str) -> str:
    """The folder whose weights the job starts from, "" for ImageNet: the `warm_start` hyperparameter wins over
    the channel ("none": a full run; a folder: that model instead of production's), else the production channel,
    which the pipeline passes only when it chose a warm start."""
    if forces_full(warm_start_hyperparameter):
        return ""
    return warm_start_hyperparameter or production_channel


_SKIPPED = "skipped"


def skipped(why: str) -> str:
    """The outcome of a warm start the job could not make: it trains from ImageNet."""
    return f"{_SKIPPED}: {why}"


CLASSES_DIFFER = "classes differ"  # skipped(CLASSES_DIFFER): the folder's labels are not the data set's


def started_warm(outcome: str) -> bool:
    return bool(outcome) and not outcome.startswith(_SKIPPED)


def recorded(decision_json: str, outcome: str, warm_start_hyperparameter: str, schedule: dict[str, Any]) -> dict[str, Any]:
    """metadata.json's `training.start_from`: the pipeline's decision (START_FROM_ENV's JSON), and what training
    made of it. `schedule`: the warm start's head_epochs, epochs and fine_tune_lr_scale, recorded when it made one."""
    try:
        decision = json.loads(decision_json or "{}")
    except ValueError:
        decision = {}
    decision = decision if isinstance(decision, dict) else {}
    is_warm = started_warm(outcome)
    found: dict[str, Any] = dict(decision, warm=is_warm)
    if is_warm:
        found.update(kind=StartKind.PRODUCTION if decision.get("kind") == StartKind.PRODUCTION else StartKind.HYPERPARAMETER,
                     chain=int(decision.get("chain", 1) or 1), **schedule)
    else:
        found.update(kind=StartKind.IMAGENET, chain=0)
        if outcome:  # the pipeline asked for a warm start, and training could not make it
            found["reason"] = f"{outcome} ({decision.get('reason', 'warm_start hyperparameter')})"
        elif forces_full(warm_start_hyperparameter):
            found["reason"] = FORCED_BY_HYPERPARAMETER
        found.setdefault("reason", "a full run")
    return found


def _chain(metadata: dict[str, Any]) -> int:
    """Production's place in its lineage: 0 for a full run (and for a model trained before start_from existed)."""
    training = metadata.get("training")
    start_from = training.get("start_from") if isinstance(training, dict) else None
    if not isinstance(start_from, dict) or start_from.get("kind") != StartKind.PRODUCTION or not start_from.get("warm"):
        return 0
    try:
        return max(0, int(start_from.get("chain", 0)))
    except (TypeError, ValueError):
        return 0
