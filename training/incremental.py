"""Incremental retraining, training side (issue 21): acting on the warm-start decision, and the shorter schedule.

Every rule of the decision is chalicelib/contract/warm_start.py's: the pipeline's (`choose`), and the job's
(`folder_to_load`: the `warm_start` hyperparameter over the production channel; `same_classes`; `recorded`).
The pipeline hands the job the production model's training output (SageMaker: the `production` channel, a
model.tar.gz; locally: SM_CHANNEL_PRODUCTION, its folder) and the decision as JSON (FLOWERS_START_FROM);
this module unpacks the folder (`source`), shortens the schedule and records the start.
training/train.py's warm_start loads the weights when the classes match; a warm-started run then trains a
shorter, gentler schedule (WARM_HEAD_SHARE of the head's epochs, WARM_FINE_TUNE_SHARE of the fine-tuning's
at WARM_LR_SHARE of its learning rate), and metadata.json's
`training.start_from` says which start it made and why (`chain` counts warm starts in a row, so the
pipeline knows when the periodic full retrain is due).
"""
from __future__ import annotations

import dataclasses
import math
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Mapping

from chalicelib.contract.training_job import KERAS_FILE, LABELS_FILE
from chalicelib.contract.vocabulary import ContainerVariable
from chalicelib.contract.warm_start import START_FROM_ENV, folder_to_load, recorded, started_warm
from training.hyperparameters import Hyperparameters

# A warm start's schedule (bench/RESULTS.md, "Incremental retraining": 95 % of the photos, then +5 %, three
# seeds, against a run from scratch on all of them): the head refits for 30 % of its epochs on cached features,
# and the backbone fine-tunes for 15 % of its epochs (1 of the default 6) at a fifth of the preset's rate. The
# production backbone is fine-tuned already: at the full rate, two epochs were worse than none on all three
# seeds (early stopping kept the head), while one gentle epoch was kept on two and scored the same as a run
# from scratch on the 1,000-photo evaluation set, in 31 % of its time.
WARM_HEAD_SHARE = 0.3
WARM_FINE_TUNE_SHARE = 0.15
WARM_LR_SHARE = 0.2  # of the preset's fine-tuning learning rate


def source(hp: Hyperparameters, environ: Mapping[str, str] | None = None) -> str:
    """The folder holding model.keras and labels.txt to start from; "" for ImageNet."""
    environ = os.environ if environ is None else environ
    folder = folder_to_load(hp.warm_start, environ.get(ContainerVariable.CHANNEL_PRODUCTION, ""))
    return _unpacked(Path(folder)) if folder else ""


def _unpacked(folder: Path) -> str:
    """SageMaker hands the channel's model.tar.gz as it is: take its model.keras and labels.txt out."""
    if (folder / KERAS_FILE).exists() or not folder.is_dir():
        return str(folder)
    archives = sorted(folder.glob("*.tar.gz"))
    if not archives:
        return str(folder)
    target = Path(tempfile.mkdtemp(prefix="warm-start-"))
    with tarfile.open(archives[0]) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if member.isfile() and name in (KERAS_FILE, LABELS_FILE) and Path(member.name).parent in (Path("."), Path("")):
                extracted = archive.extractfile(member)
                if extracted is not None:
                    (target / name).write_bytes(extracted.read())
    return str(target)


def schedule(hp: Hyperparameters, warm: str) -> Hyperparameters:
    """A shorter, gentler schedule after a warm start (`warm` is train.warm_start's answer: the folder, or
    "" / "skipped: ..."): at least one epoch of each phase that was to run."""
    if not started_warm(warm):
        return hp
    return dataclasses.replace(hp, head_epochs=max(1, math.ceil(hp.head_epochs * WARM_HEAD_SHARE)),
                               epochs=hp.epochs and max(1, math.ceil(hp.epochs * WARM_FINE_TUNE_SHARE)),
                               fine_tune_lr_scale=hp.resolved_fine_tune_lr_scale() * WARM_LR_SHARE)


def record(warm: str, hp: Hyperparameters, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """metadata.json's training.start_from: the pipeline's decision, and what training made of it (`hp`: the
    schedule it trained)."""
    environ = os.environ if environ is None else environ
    trained = {"head_epochs": hp.head_epochs, "epochs": hp.epochs, "fine_tune_lr_scale": hp.fine_tune_lr_scale}
    return recorded(environ.get(START_FROM_ENV, ""), warm, hp.warm_start, trained)
