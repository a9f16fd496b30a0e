"""pytest fixtures shared by the test modules; the helpers they use live in data_fixtures.py."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from data_fixtures import TINY, WEIGHTS, Job, make_folder_dataset, run_in_process


@pytest.fixture
def colour_data(tmp_path) -> Path:
    return make_folder_dataset(tmp_path / "data")


@pytest.fixture
def job(tmp_path, colour_data) -> Job:
    return Job(tmp_path / "job", colour_data).hyperparameters(**TINY)


@pytest.fixture(scope="session")
def keras_home() -> Path:
    """A Keras cache holding the offline ImageNet MobileNetV2 weights from ../shared."""
    home = Path(os.environ["KERAS_HOME"])
    (home / "models").mkdir(parents=True, exist_ok=True)
    for weights in WEIGHTS.glob("*.h5"):
        target = home / "models" / weights.name
        if not target.exists():
            shutil.copyfile(weights, target)
    return home


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory) -> Job:
    """One tiny model trained once per session, for the conversion tests."""
    from training import train

    root = tmp_path_factory.mktemp("trained")
    job = Job(root / "job", make_folder_dataset(root / "data", per_class=20)).hyperparameters(
        preset="tiny_cnn", image_size=32, epochs=3, head_epochs=8, batch_size=8, augmentation="false")
    run_in_process(job, train.main)
    return job
