"""The one hyperparameter table (chalicelib/contract/hyperparameters.py): each rule, the Lambda's check and
training's parser giving the same verdict (the five values the two copies once disagreed on among them), the
training dataclass matching the table, and the README's table generated from it. Rewriting the README with
`python -m chalicelib.contract.hyperparameters`, and the Lambdas' imports: tests/integration/test_hyperparameter_table_processes.py."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chalicelib.contract import hyperparameters as table
from chalicelib.contract import hyperparameters as hp  # the name of the tests from tests/integration/test_cloud_hyperparameters.py
from chalicelib.contract.hyperparameters import HyperparameterProblem, check
from training.hyperparameters import Hyperparameters, parse

ROOT = Path(__file__).resolve().parents[2]


def lambda_verdict(values: dict) -> dict[str, str] | None:
    try:
        return check(values, "training.json")
    except HyperparameterProblem:
        return None


def training_verdict(values: dict) -> Hyperparameters | None:
    try:
        return parse(values)
    except HyperparameterProblem:
        return None


# Each rule: what passes (as the job's string) and what does not, with the message the Lambda gives.
@pytest.mark.parametrize("name, value, text", [
    ("epochs", 8, "8"), ("epochs", "0", "0"), ("epochs", " 16.0 ", "16"), ("epochs", 1e3, "1000"), ("head_epochs", 1, "1"),
    ("batch_size", 4096, "4096"), ("learning_rate", "0.0005", "0.0005"), ("learning_rate", 1, "1.0"),
    ("fine_tune_lr_scale", 0, "0.0"), ("fine_tune_layers", -1, "-1"), ("fine_tune_layers", 100_000, "100000"),
    ("image_size", 0, "0"), ("image_size", 32, "32"), ("image_size", "1024", "1024"), ("seed", 2**31 - 1, "2147483647"),
    ("augmentation", False, "false"), ("augmentation", "Yes", "true"), ("class_weights", "0", "false"),
    ("label_smoothing", 0, "0.0"), ("dropout", "0.5", "0.5"), ("patience", 1000, "1000"),
    ("max_training_time", 1, "1"), ("max_training_time", table.MAX_RUNTIME, str(table.MAX_RUNTIME)),
    ("min_images_per_class", 2, "2"), ("splits", "70/15/15", "70/15/15"), ("splits", [8, 1, 1], "8/1/1"),
    ("splits", "0.6,0.2,0", "0.6/0.2/0"), ("splits", "8:1:1", "8/1/1"), ("preset", "tiny_cnn", "tiny_cnn"),
    ("weights", " none ", "none"), ("weights", "/opt/ml/w.h5", "/opt/ml/w.h5"), ("weights", "", ""),
    ("warm_start", "none", "none"), ("warm_start", "", ""), ("augment_on", "device", "device"),
])
def test_what_passes_and_the_string_the_job_gets(name, value, text):
    assert check({name: value}, "x") == {name: text}


@pytest.mark.parametrize("name, value, reason", [
    ("epochs", -3, "expected an integer from 0 to 1000, got -3"), ("epochs", 2.5, "expected an integer from 0 to 1000, got 2.5"),
    ("epochs", True, "expected an integer, got True"), ("epochs", "many", "could not convert"),
    ("head_epochs", 0, "from 1 to 1000"), ("batch_size", 0, "from 1 to 4096"),
    ("learning_rate", 0, "expected a number in (0, 1], got 0"), ("learning_rate", 2, "(0, 1]"), ("learning_rate", "nan", "(0, 1]"),
    ("fine_tune_lr_scale", 1.5, "[0, 1]"), ("fine_tune_layers", -2, "from -1 to 100000"),
    ("image_size", 16, "expected 0 (the preset's) or 32 to 1024, got 16"), ("image_size", 4096, "from 0 to 1024"),
    ("label_smoothing", 1, "[0, 1)"), ("dropout", -0.1, "[0, 1)"), ("augmentation", "maybe", "expected true or false, got 'maybe'"),
    ("patience", 0, "from 1 to 1000"), ("max_training_time", 0, "from 1 to 2419200"),
    ("max_training_time", table.MAX_RUNTIME + 1, "from 1 to 2419200"), ("min_images_per_class", 0, "from 1 to 10000000"),
    ("seed", -1, "from 0 to 2147483647"), ("splits", "80/20", "three parts like 80/10/10"),
    ("splits", "0/50/50", "train and validation positive"), ("splits", "80/0/20", "train and validation positive"),
    ("splits", "80/-5/25", "non-negative"), ("splits", "nan/1/1", "non-negative"), ("splits", "inf/1/1", "non-negative"),
    ("preset", "vgg", "expected one of mobilenet_v2, resnet_v1_50, efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, "
     "tiny_cnn, got 'vgg'"),
    ("weights", 5, "expected imagenet, none or a weights file in the training image, got 5"), ("weights", "x" * 1001, "weights file"),
    ("warm_start", ["a"], "none or a model folder"), ("augment_on", "gpu", "expected one of auto, cpu, device, got 'gpu'"),
    ("augment_on", "Device", "one of auto, cpu, device"),
])
def test_what_fails_and_why(name, value, reason):
    with pytest.raises(HyperparameterProblem) as caught:
        check({name: value}, "training.json")
    assert str(caught.value).startswith(f"bad hyperparameters in training.json: {name}: ")
    assert reason in str(caught.value)


def test_the_message_the_readme_quotes():
    with pytest.raises(HyperparameterProblem) as caught:
        table.parse_file(b'{"epochs": -3}')
    assert str(caught.value) == "bad hyperparameters in training.json: epochs: expected an integer from 0 to 1000, got -3"


# The five values the Lambda's copy and training's copy once disagreed on: one verdict now, from one rule.
@pytest.mark.parametrize("values, accepted", [
    ({"max_training_time": 30}, True),  # was: the Lambda refused (60 s at least), training ran it
    ({"patience": 5000}, False),  # was: training accepted any patience
    ({"seed": 2**40}, False),  # was: training accepted it (and NumPy's seed would then have failed the job)
    ({"fine_tune_layers": 1e6}, False),  # was: training accepted any count
    ({"weights": "/nonexistent"}, True),  # was: training refused a file it could not see; now the job fails building the model
])
def test_the_lambda_and_training_give_one_verdict(values, accepted):
    as_job_gets = lambda_verdict(values)
    assert (as_job_gets is not None) == accepted
    assert (training_verdict(values) is not None) == accepted  # training.json's values as JSON gives them
    if as_job_gets is not None:  # and as SageMaker hands them to the job: strings
        assert training_verdict(as_job_gets) == training_verdict(values)


def test_a_missing_weights_file_is_the_backbones_to_report():
    from training.presets import PRESETS, WeightsUnavailable

    hp = parse({"preset": "tiny_cnn", "weights": "/nonexistent"})
    assert hp.resolved_weights() == "/nonexistent"
    with pytest.raises(WeightsUnavailable, match="weights: '/nonexistent' is neither imagenet, none nor an existing file"):
        PRESETS[hp.preset].backbone(hp.resolved_weights(), 32)


def test_training_reads_the_strings_the_lambda_writes():
    """Values of every kind: training makes the same of the Lambda's strings as of the values it was given."""
    values = {"epochs": "3", "learning_rate": "0.01", "augmentation": "False", "splits": [70, 20, 10], "batch_size": "16.0",
              "fine_tune_lr_scale": 0.05, "weights": "none", "image_size": 96}
    hp = parse(check(values, "x"))
    assert hp == parse(values)
    assert (hp.epochs, hp.learning_rate, hp.augmentation, hp.batch_size, hp.fine_tune_lr_scale) == (3, 0.01, False, 16, 0.05)
    assert hp.splits == pytest.approx((0.7, 0.2, 0.1)) and hp.image_size == 96


def test_every_default_passes_its_own_rule_and_is_the_dataclass_default():
    defaults = Hyperparameters()
    for row in table.TABLE:
        assert row.rule.text(row.default) == row.default, row.name
        assert getattr(defaults, row.name) == table.typed(row.name, row.default), row.name
    assert defaults.splits == (0.8, 0.1, 0.1) and defaults.learning_rate == 1e-3 and defaults.weights == ""


def test_the_dataclass_has_the_tables_names_types_and_order():
    fields = dataclasses.fields(Hyperparameters)
    assert [(f.name, f.type) for f in fields] == [(row.name, row.type_name) for row in table.TABLE]
    # metadata.json's "hyperparameters" keeps this order
    assert list(Hyperparameters().as_dict())[:4] == ["preset", "weights", "epochs", "head_epochs"]


def test_unknown_keys_fail_on_both_sides_but_sagemakers_own_only_in_the_lambda():
    assert lambda_verdict({"lr": 0.1}) is None and training_verdict({"lr": 0.1}) is None
    platform = {"sagemaker_program": "train.py", "_tuning_objective_metric": "val_accuracy"}
    assert training_verdict(platform) == Hyperparameters()  # SageMaker writes these into the job's hyperparameters.json
    with pytest.raises(HyperparameterProblem, match="unknown hyperparameter 'sagemaker_program'"):
        check(platform, "training.json")  # a user's training.json does not set them


def test_the_rule_across_hyperparameters_is_one_for_both_sides():
    """A preset without ImageNet weights asked for them: each layer alone passes, the run as a whole does not, for the
    Lambda (`combined`, on the layers put together) as for training."""
    run = {"preset": "tiny_cnn", "weights": "imagenet"}
    assert lambda_verdict(run) is not None  # each layer is checked alone first: nothing wrong with either value
    with pytest.raises(HyperparameterProblem, match="weights: preset tiny_cnn has no ImageNet weights"):
        table.combined(check(run, "x"), "this run")
    with pytest.raises(HyperparameterProblem, match="weights: preset tiny_cnn has no ImageNet weights"):
        parse(run)
    assert table.combined(check({"preset": "mobilenet_v2", "weights": "imagenet"}, "x"), "x")["weights"] == "imagenet"
    assert table.combined_problems({"weights": "imagenet"}) == []  # the default preset has them
    with pytest.raises(HyperparameterProblem) as caught:  # a bad preset is one problem, not two
        parse({"preset": "vgg", "weights": "imagenet"})
    assert str(caught.value) == ("bad hyperparameters in hyperparameters.json: preset: expected one of mobilenet_v2, "
                                 "resnet_v1_50, efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, tiny_cnn, got 'vgg'")


def test_the_settings_max_training_time_has_the_hyperparameters_bounds(tmp_path):
    from chalicelib import settings

    home = {"FLOWERS_HOME": str(tmp_path)}
    assert settings.from_environ(dict(home, MAX_TRAINING_TIME="30")).max_training_time == 30
    for bad in ("0", str(table.MAX_RUNTIME + 1)):
        with pytest.raises(settings.SettingsError, match="MAX_TRAINING_TIME"):
            settings.from_environ(dict(home, MAX_TRAINING_TIME=bad))


# the README -----------------------------------------------------------------------------------------
def test_the_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    assert table.readme_table() in readme, "README.md's hyperparameter table drifted: python -m chalicelib.contract.hyperparameters --write README.md"
    assert table.with_readme_table(readme) == readme


def test_max_training_time_is_bounded_by_what_sagemaker_allows():
    assert hp.check({"max_training_time": "3600"}, "x") == {"max_training_time": "3600"}
    for bad in (0, hp.MAX_RUNTIME + 1):
        with pytest.raises(hp.HyperparameterProblem, match="max_training_time"):
            hp.check({"max_training_time": bad}, "x")


def test_every_problem_is_named_with_its_source():
    with pytest.raises(hp.HyperparameterProblem) as caught:
        hp.parse_file(b'{"epochs": -1, "colour": "red", "dropout": 0.1}')
    message = str(caught.value)
    assert message.startswith("bad hyperparameters in training.json: ") and "epochs" in message and "'colour'" in message
    for raw in (b"[1, 2]", b"not json", b'"epochs"'):
        with pytest.raises(hp.HyperparameterProblem, match="training.json"):
            hp.parse_file(raw)
