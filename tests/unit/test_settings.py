"""chalicelib/settings.py: every variable the app reads, parsed and checked in one place, named when wrong."""
from __future__ import annotations

import pytest

from chalicelib import settings
from chalicelib.local_stack.watcher import Watch
from pipeline_fixtures import ENV


AWS_ENV = {k: v for k, v in ENV.items() if not k.startswith("AWS_")}


def test_settings_defaults_and_types():
    s = settings.from_environ(AWS_ENV)
    assert s.mode == "aws" and s.dataset_prefix == "datasets/flowers/" and s.training_instance_type == "ml.g5.xlarge"
    assert s.conversion_instance_type == "ml.m5.xlarge" and s.use_spot is False and s.preset == "efficientnet_lite1"
    assert (s.max_training_time, s.quiet_period, s.min_new_images, s.min_accuracy, s.model_refresh_seconds) == (3600, 600, 1, 0.80, 60)
    assert s.dataset_uri == "s3://flowers-data/datasets/flowers/"
    with pytest.raises(Exception):
        s.quiet_period = 5  # frozen


def test_settings_parse_values():
    s = settings.from_environ(dict(AWS_ENV, USE_SPOT="true", QUIET_PERIOD="30", MIN_ACCURACY="0.9", DATASET_PREFIX="photos",
                                   PRESET="mobilenet_v2"))
    assert s.use_spot and s.quiet_period == 30 and s.min_accuracy == 0.9 and s.dataset_prefix == "photos/" and s.preset == "mobilenet_v2"


def test_settings_name_every_bad_variable():
    env = dict(AWS_ENV, QUIET_PERIOD="soon", USE_SPOT="maybe", PRESET="vgg", TRAINING_INSTANCE_TYPE="g5.xlarge")
    del env["STATE_TABLE"]
    with pytest.raises(settings.SettingsError) as caught:
        settings.from_environ(env)
    message = str(caught.value)
    for variable in ("QUIET_PERIOD", "USE_SPOT", "PRESET", "TRAINING_INSTANCE_TYPE", "STATE_TABLE"):
        assert variable in message


def test_settings_mode_default_depends_on_lambda():
    assert settings.from_environ({}).mode == "local"
    with pytest.raises(settings.SettingsError, match="DATASET_BUCKET is required"):
        settings.from_environ({"AWS_LAMBDA_FUNCTION_NAME": "flowers-dev"})


def test_no_environ_reads_outside_settings():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [str(p) for p in [root / "app.py", *sorted((root / "chalicelib").rglob("*.py"))]
                 if p.name != "settings.py" and ("os.environ" in p.read_text() or "getenv" in p.read_text())]
    assert offenders == []


def test_local_settings_defaults_and_overrides(tmp_path):
    s = settings.from_environ({"FLOWERS_HOME": str(tmp_path)})
    assert s.mode == "local" and s.home == str(tmp_path.resolve()) and s.quiet_period == 5 and s.preset == "efficientnet_lite1"
    assert (s.dataset_bucket, s.dataset_prefix, s.artifact_bucket, s.port, s.quantize) == ("bucket", "", "artifacts", 8000, "auto")
    s = settings.from_environ({"FLOWERS_HOME": str(tmp_path), "QUIET_PERIOD": "1", "PRESET": "tiny_cnn", "FLOWERS_PORT": "0",
                               "FLOWERS_HYPERPARAMETERS": '{"epochs": 1}'})
    assert (s.quiet_period, s.preset, s.port, s.extra_hyperparameters) == (1, "tiny_cnn", 0, {"epochs": "1"})
    with pytest.raises(settings.SettingsError, match="FLOWERS_HYPERPARAMETERS"):
        settings.from_environ({"FLOWERS_HYPERPARAMETERS": "[1]"})
    assert not set(settings.LOCAL_ONLY) & set(settings.variables())  # the Lambdas never need them
    assert settings.from_environ({}).home.endswith(".flowers")


def test_watch_setting(tmp_path):
    assert settings.from_environ({"FLOWERS_HOME": str(tmp_path)}).watch == "notify"
    assert settings.from_environ({"FLOWERS_HOME": str(tmp_path), "FLOWERS_WATCH": "poll"}).watch == "poll"
    with pytest.raises(settings.SettingsError, match="FLOWERS_WATCH"):
        settings.from_environ({"FLOWERS_HOME": str(tmp_path), "FLOWERS_WATCH": "sometimes"})
    with pytest.raises(ValueError):
        Watch(tmp_path, lambda: None, "sometimes")


def test_full_retrain_every_setting(tmp_path):
    assert settings.Settings().full_retrain_every == 5
    assert settings.from_environ({"FLOWERS_HOME": str(tmp_path), "FULL_RETRAIN_EVERY": "3"}).full_retrain_every == 3
    with pytest.raises(settings.SettingsError, match="FULL_RETRAIN_EVERY"):
        settings.from_environ({"FLOWERS_HOME": str(tmp_path), "FULL_RETRAIN_EVERY": "0"})
    assert "full_retrain_every" in settings.variables()  # the Lambdas read it: the stack sets it


def test_deployment_defaults_are_a_checked_setting():
    env = {k: v for k, v in ENV.items() if not k.startswith("AWS_")}
    assert settings.from_environ(dict(env, HYPERPARAMETERS='{"epochs": 8}')).hyperparameters == {"epochs": "8"}
    with pytest.raises(settings.SettingsError, match="HYPERPARAMETERS"):
        settings.from_environ(dict(env, HYPERPARAMETERS='{"epochs": -8}'))
