"""Early stopping on a noisy validation split: the choice of the best epoch and the weights it restores."""
import keras
import numpy as np
import pytest

from training.callbacks import RestoreBest, best_epoch, standard_error


def test_standard_error_of_an_accuracy():
    assert standard_error(0.95, 139) == pytest.approx(0.01849, abs=1e-4)
    assert standard_error(1.0, 139) == 0.0
    assert standard_error(0.9, 0) == 0.0


def test_highest_accuracy_wins_when_the_split_is_large():
    scores = [(0.90, 0.50), (0.95, 0.60), (0.94, 0.40)]
    assert best_epoch(scores, validation_size=100_000) == 1


def test_accuracies_within_one_standard_error_tie_and_the_lower_loss_wins():
    # Measured on 139 photos (seed 7): the two-photo "best" epoch was still half-trained.
    scores = [(0.9065, 0.63), (0.9568, 0.564), (0.9281, 0.570), (0.9424, 0.565), (0.9424, 0.554)]
    assert best_epoch(scores, validation_size=139) == 4
    # Clearly worse accuracy is not rescued by its loss.
    assert best_epoch([(0.95, 0.6), (0.90, 0.3)], validation_size=139) == 0


def test_exact_ties_go_to_the_later_epoch():
    assert best_epoch([(0.9, 0.5), (0.9, 0.5)], validation_size=50) == 1
    with pytest.raises(ValueError):
        best_epoch([], validation_size=10)


def _model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.stop_training = False  # fit() sets it; these tests drive the callback by hand
    return model


def _started(**kwargs):
    """A RestoreBest on a one-layer model, at the start of fit()."""
    model = _model()
    callback = RestoreBest(validation_size=139, **kwargs)
    callback.set_model(model)
    callback.on_train_begin()
    return model, callback


def _epoch(callback, model, value, accuracy, loss):
    model.layers[0].kernel.assign(np.full((2, 1), value, np.float32))
    callback.on_epoch_end(0, {"val_accuracy": accuracy, "val_loss": loss})


def test_restores_the_best_epoch_and_stops_when_it_is_patience_epochs_old():
    model, callback = _started(baseline=(0.80, 0.9), patience=2)
    _epoch(callback, model, 1.0, 0.95, 0.60)
    _epoch(callback, model, 2.0, 0.94, 0.50)  # a tie on accuracy, lower loss: best
    assert callback.best == 2 and not model.stop_training
    _epoch(callback, model, 3.0, 0.93, 0.70)
    assert not model.stop_training
    _epoch(callback, model, 4.0, 0.90, 0.80)
    assert model.stop_training
    callback.on_train_end()
    assert callback.improved
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), np.full((2, 1), 2.0))
    # Only epochs that could still win keep a copy of their weights.
    assert sorted(callback.kept) == [1, 2]


def test_fine_tuning_that_never_beats_the_head_keeps_the_starting_weights():
    model, callback = _started(baseline=(0.95, 0.4), patience=5)
    _epoch(callback, model, 1.0, 0.90, 0.6)
    _epoch(callback, model, 2.0, 0.94, 0.5)
    callback.on_train_end()
    assert not callback.improved
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), np.zeros((2, 1)))


def test_no_stopping_in_the_first_epochs_while_the_head_is_still_ahead():
    model, callback = _started(baseline=(0.95, 0.5), patience=2, start_from_epoch=4)
    for value in (1.0, 2.0, 3.0):
        _epoch(callback, model, value, 0.88, 0.7)  # the warm-up dip
        assert not model.stop_training
    _epoch(callback, model, 4.0, 0.97, 0.45)
    assert callback.best == 4 and not model.stop_training
    for value in (5.0, 6.0):
        _epoch(callback, model, value, 0.93, 0.6)
    assert model.stop_training  # the best epoch is now `patience` epochs old
