"""The "not a flower" threshold past the pure rule (tests/unit/test_calibration.py): `flowers predict` says
"not recognised", and a real training run with a background class `other`."""
from __future__ import annotations

import pytest

from chalicelib.serving.predictor import decide


@pytest.mark.parametrize("label,threshold,expected", [
    ("roses", 0.4, "-> roses"),
    (None, 0.7, "-> not recognised (top score below 70.0 %)"),
    (None, None, "-> not recognised"),  # the background class `other`, no threshold
])
def test_flowers_predict_says_not_recognised(tmp_path, label, threshold, expected):
    import json

    from flowers_cli.client import Answer
    from flowers_cli.output import predict_table

    body = {"model": {"version": "v1", "created_at": ""}, "label": label, "threshold": threshold,
            "predictions": [{"label": "roses", "score": 0.61}, {"label": "other", "score": 0.39}]}

    class FakeApi:
        def post(self, path, data, content_type):
            return Answer(200, {}, json.dumps(body).encode())

    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    table, failures = predict_table(FakeApi(), [photo])
    assert failures == [] and table.splitlines()[1].strip() == expected and "1. roses           61.0 %" in table


def test_training_with_an_other_class(tmp_path):
    """A data set with a folder `other` trains it as a normal class; the threshold rule leaves its photos out,
    and the served rule answers null where it is the top class."""
    from data_fixtures import Job, make_folder_dataset, run_in_process
    from training import train

    colours = {"red": (220, 40, 40), "green": (40, 200, 60), "other": (40, 60, 220)}
    job = Job(tmp_path / "job", make_folder_dataset(tmp_path / "data", per_class=40, colours=colours)).hyperparameters(
        preset="tiny_cnn", image_size=32, epochs=2, head_epochs=6, batch_size=8, augmentation="false")
    assert run_in_process(job, train.main) == 0
    meta = job.metadata()
    assert "other" in meta["labels"] and meta["calibration"]["background_class"] == "other"
    assert isinstance(meta["threshold"], float) and meta["calibration"]["val_refused"] <= 0.05
    assert decide([{"label": "other", "score": 0.9}], meta["threshold"]) is None
