"""The familiarity gate (tests/unit/test_familiarity.py) computed in the exported graph, and fitted by a real run."""
from __future__ import annotations

import io

import numpy as np
import pytest

from data_fixtures import clusters
from training import familiarity


@pytest.mark.parametrize("mode", ["fp32", "fp16", "dynamic", "int8"])
def test_graph_computes_the_numpy_factor(tmp_path, mode):
    """The exported model's scores are softmax(logits / T) x the NumPy factor, also as a .tflite."""
    import keras

    from training import calibration
    from training.convert import tflite_predict, to_tflite
    from training.model import Classifier, calibrated

    rng = np.random.default_rng(3)
    dims = 32
    inputs = keras.Input((dims,), name="image")
    extractor = keras.Model(inputs, keras.layers.Activation("relu")(inputs))  # features = relu(input): the "backbone"
    head_input = keras.Input((dims,))
    head = keras.Model(head_input, keras.layers.Dense(3, activation="softmax", name="predictions")(head_input))
    full = keras.Model(inputs, head(extractor.output), name="tiny")
    clf = Classifier(full, extractor, head, extractor)
    train, labels, centres = clusters(rng, 300, dims=dims)
    validation = np.abs(centres[np.arange(90) % 3] + 0.3 * rng.normal(size=(90, dims)))
    gate = familiarity.fit(train, labels, validation, np.arange(90) % 3, ["a", "b", "c"], rank=8)
    model = calibrated(clf, 0.7, gate.constants())
    photos = np.concatenate([validation[:40], np.abs(rng.normal(size=(20, dims)) * 2)]).astype(np.float32)
    kernel, bias = head.get_layer("predictions").get_weights()
    logits = np.maximum(photos, 0).astype(np.float64) @ kernel + bias  # the head on relu(photos), in NumPy
    expected = calibration.softmax(logits / 0.7) * gate.factor(photos)[:, None]
    np.testing.assert_allclose(model.predict(photos, verbose=0), expected, atol=1e-4)
    model.export(str(tmp_path / "saved"), verbose=False)
    served = tflite_predict(to_tflite(tmp_path / "saved", mode, train[:100].astype(np.float32)), photos)
    familiar = expected.max(1) > 0.1
    assert familiar[:40].mean() > 0.8 and not familiar[40:].any()
    if mode == "fp32":  # scores far from every class shrink a thousandfold but keep their order
        assert (served.argmax(1) == expected.argmax(1)).all()
        assert (expected.max(1) >= familiarity.factor_of(np.array([np.inf]), 0.0, 1.0)[0] / 3).all()  # floor x 1/classes
    assert (served.argmax(1) == expected.argmax(1))[familiar].mean() >= 0.95
    # the gate's verdict (a top score far below or near the softmax's) survives quantisation
    np.testing.assert_allclose(served.max(1), expected.max(1), atol=0.02 if mode == "fp32" else 0.12)
    # model.keras keeps the gate (warm start skips it: its constants are refitted every run)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(reloaded.predict(photos, verbose=0), model.predict(photos, verbose=0), atol=1e-6)


def test_training_fits_the_gate_and_warm_starts_past_it(tmp_path):
    """A run with enough validation photos exports the gate: photos like the training ones keep their
    scores, a colour no class has loses them; the next run warm-starts from that model all the same."""
    from chalicelib.contract.imaging import load_pixels
    from data_fixtures import Job, colour_image, make_folder_dataset, run_in_process
    from training import train
    from training.convert import saved_model_predict

    job = Job(tmp_path / "job", make_folder_dataset(tmp_path / "data", per_class=80)).hyperparameters(
        preset="tiny_cnn", image_size=32, epochs=2, head_epochs=6, batch_size=16, augmentation="false")
    assert run_in_process(job, train.main) == 0
    meta = job.metadata()
    gate = meta["calibration"]["familiarity"]
    assert gate is not None and gate["classes"] == ["blue", "green", "red"] and gate["scale"] > 0
    assert meta["calibration"]["val_refused"] <= 0.05 and isinstance(meta["metrics"]["test"]["refused"], float)

    def pixels(colour, seeds):  # as the server sees them
        photos = []
        for seed in seeds:
            buffer = io.BytesIO()
            colour_image(colour, seed).save(buffer, "PNG")
            photos.append(load_pixels(buffer.getvalue(), 32).pixels)
        return np.stack(photos).astype(np.float32)

    known = saved_model_predict(job.model / "saved_model", pixels((220, 40, 40), range(5000, 5020)))
    unknown = saved_model_predict(job.model / "saved_model", pixels((230, 230, 40), range(5000, 5020)))  # yellow
    assert np.mean(known.max(1) >= meta["threshold"]) >= 0.9
    assert np.mean(unknown.max(1) < meta["threshold"]) >= 0.9

    again = Job(tmp_path / "again", job.data).hyperparameters(
        preset="tiny_cnn", image_size=32, epochs=0, head_epochs=1, batch_size=16, warm_start=str(job.model))
    assert run_in_process(again, train.main) == 0
    assert again.metadata()["training"]["warm_start"] == str(job.model)
