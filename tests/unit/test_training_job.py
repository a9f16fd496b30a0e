"""chalicelib/contract/training_job.py: what the Lambdas and the training job agree on."""
from __future__ import annotations

from chalicelib.contract.training_job import IMAGENET_WEIGHTS, PRESET_NAMES


def test_preset_names_match_training():
    from training.presets import PRESETS

    assert set(PRESET_NAMES) == set(PRESETS)
    assert IMAGENET_WEIGHTS == {name: preset.has_imagenet_weights for name, preset in PRESETS.items()}
