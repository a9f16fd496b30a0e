"""training.hyperparameters: SageMaker strings in, typed and validated values out (the rules are the table's:
tests/unit/test_hyperparameter_table.py)."""
import pytest

from chalicelib.contract.hyperparameters import HyperparameterProblem
from training.hyperparameters import Hyperparameters, parse


def test_defaults_and_strings():
    hp = parse({"epochs": "3", "learning_rate": "0.01", "augmentation": "False", "splits": "70/20/10",
                "batch_size": "16.0", "sagemaker_program": "ignored", "_tuning_objective_metric": "x"})
    assert hp.epochs == 3 and hp.learning_rate == 0.01 and hp.augmentation is False
    assert hp.batch_size == 16
    assert hp.splits == pytest.approx((0.7, 0.2, 0.1))
    assert hp.preset == "efficientnet_lite1" and hp.resolved_image_size() == 240
    assert hp.resolved_weights() == "imagenet"


def test_preset_defaults_follow_the_preset():
    hp = parse({"preset": "tiny_cnn"})
    assert hp.resolved_weights() is None and hp.resolved_image_size() == 64
    assert parse({"preset": "resnet_v1_50", "weights": "none"}).resolved_fine_tune_layers() == 32
    assert parse({"fine_tune_layers": "0"}).resolved_fine_tune_layers() == 0


def test_every_problem_is_listed_at_once():
    with pytest.raises(HyperparameterProblem) as err:
        parse({"epoch": "3", "batch_size": "zero", "learning_rate": "-1", "splits": "80/20",
               "augmentation": "maybe", "preset": "vgg"})
    message = str(err.value)
    assert message.startswith("bad hyperparameters in hyperparameters.json: ")
    for needle in ("unknown hyperparameter 'epoch'", "batch_size", "learning_rate", "splits", "augmentation", "got 'vgg'"):
        assert needle in message


@pytest.mark.parametrize("raw", [
    {"epochs": "2.5"}, {"image_size": "16"}, {"max_training_time": "0"}, {"label_smoothing": "1"},
    {"min_images_per_class": "0"}, {"splits": "0/50/50"}, {"preset": "tiny_cnn", "weights": "imagenet"},
    {"batch_size": True}, {"patience": "5000"}, {"seed": str(2**40)}, {"fine_tune_layers": "1e6"},
])
def test_bad_values(raw):
    with pytest.raises(HyperparameterProblem):
        parse(raw)


def test_as_dict_round_trips():
    hp = parse({"preset": "tiny_cnn", "splits": "0.6,0.2,0.2"})
    assert parse(hp.as_dict()) == hp
    assert isinstance(Hyperparameters().as_dict()["splits"], list)
