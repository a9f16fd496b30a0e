"""training.convert: every quantization mode, checked against the SavedModel on the test split."""
import hashlib
import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from chalicelib.contract.imaging import load_pixels
from data_fixtures import ROOT
from training import convert as cv


@pytest.mark.parametrize("mode", ["fp32", "fp16", "dynamic", "int8"])
def test_each_mode_agrees_with_the_saved_model(trained_tiny, tmp_path, mode):
    meta = cv.convert(trained_tiny.model, tmp_path / mode, trained_tiny.data, quantize=mode)
    blob = (tmp_path / mode / "model.tflite").read_bytes()
    assert meta["quantization"] == mode
    assert meta["model"] == {"file": "model.tflite", "sha256": hashlib.sha256(blob).hexdigest(), "size_bytes": len(blob)}
    (candidate,) = meta["conversion"]["candidates"]
    assert candidate["agreement"] >= (1.0 if mode in ("fp32", "fp16") else 0.9)
    assert abs(candidate["accuracy"] - meta["metrics"]["saved_model_test_accuracy"]) <= (0.0 if mode == "fp32" else 0.1)
    assert meta["metrics"]["test"]["count"] == meta["test_set"]["count"] > 0
    assert (tmp_path / mode / "labels.txt").read_text() == (trained_tiny.model / "labels.txt").read_text()
    on_disk = json.loads((tmp_path / mode / "metadata.json").read_text())
    assert on_disk["labels"] == ["blue", "green", "red"] and on_disk["input"]["dtype"] == "float32"


def test_preprocessing_lives_inside_the_model(trained_tiny, tmp_path):
    """A client only decodes and resizes: raw [0, 255] pixels in, the right class out."""
    cv.convert(trained_tiny.model, tmp_path / "out", trained_tiny.data, quantize="fp32")
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    photos = sorted((trained_tiny.data / "red").glob("*.png"))[:5]
    batch = np.stack([load_pixels(p.read_bytes(), meta["image_size"]).pixels for p in photos]).astype(np.float32)
    probabilities = cv.tflite_predict(str(tmp_path / "out" / "model.tflite"), batch)
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    keras_probabilities = cv.saved_model_predict(trained_tiny.model / "saved_model", batch)
    np.testing.assert_allclose(probabilities, keras_probabilities, atol=1e-4)


def test_auto_from_a_model_archive_with_baseline(trained_tiny, tmp_path):
    """What the SageMaker Processing job does: model.tar.gz in, the served model scored beside it."""
    archive_dir = tmp_path / "input"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "model.tar.gz", "w:gz") as tar:
        for item in trained_tiny.model.iterdir():
            tar.add(item, arcname=item.name)
    cv.convert(trained_tiny.model, tmp_path / "served", trained_tiny.data, quantize="fp32")
    meta = cv.convert(archive_dir, tmp_path / "out", trained_tiny.data, quantize="auto", baseline=tmp_path / "served")
    modes = [c["quantization"] for c in meta["conversion"]["candidates"]]
    assert modes == ["fp32", "fp16", "dynamic", "int8"]
    sizes = {c["quantization"]: c["size_bytes"] for c in meta["conversion"]["candidates"]}
    assert sizes["fp16"] < sizes["fp32"]
    chosen = next(c for c in meta["conversion"]["candidates"] if c["quantization"] == meta["quantization"])
    assert chosen["held_out_accuracy"] >= meta["metrics"]["saved_model_held_out_accuracy"] - 0.005
    assert meta["metrics"]["held_out_count"] >= meta["test_set"]["count"]
    assert meta["metrics"]["baseline"]["accuracy"] == pytest.approx(meta["metrics"]["saved_model_test_accuracy"])
    # the same photos, so the served model's per-class figures sit beside the candidate's
    baseline = meta["metrics"]["baseline"]
    assert set(baseline["per_class"]) == set(meta["metrics"]["test"]["per_class"])
    assert {"precision", "recall", "f1", "support"} <= set(next(iter(baseline["per_class"].values())))
    assert sum(v["support"] for v in baseline["per_class"].values()) == meta["metrics"]["test"]["count"]
    assert isinstance(baseline["confused_pairs"], list)


def test_cli_errors_are_clear(trained_tiny, tmp_path):
    result = subprocess.run([sys.executable, "-m", "training.convert", str(trained_tiny.model), str(tmp_path / "o"),
                             "--data", str(tmp_path / "missing")], cwd=ROOT, capture_output=True, text=True,
                            env={"SM_OUTPUT_DIR": str(tmp_path / "sm"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "is not a folder" in result.stderr
    assert "is not a folder" in (tmp_path / "sm" / "failure").read_text()
    result = subprocess.run([sys.executable, "-m", "training.convert", str(tmp_path), str(tmp_path / "o"),
                             "--data", str(trained_tiny.data)], cwd=ROOT, capture_output=True, text=True,
                            env={"SM_OUTPUT_DIR": str(tmp_path / "sm"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1 and "neither saved_model/ nor a model.tar.gz" in result.stderr


def test_the_manifest_training_recorded_stays_in_metadata(trained_tiny, tmp_path):
    """metadata.json names the run's manifest (the exact files trained on); the converted model's keeps it,
    so the registry records it from what the jobs wrote."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained_tiny.model, model)
    metadata = json.loads((model / "metadata.json").read_text())
    assert metadata["manifest"] is None  # trained without a pipeline
    manifest = {"uri": "s3://artifacts/manifests/0123456789abcdef.json", "sha256": "cd" * 32}
    (model / "metadata.json").write_text(json.dumps(dict(metadata, manifest=manifest)))
    assert cv.convert(model, tmp_path / "out", trained_tiny.data, quantize="fp32")["manifest"] == manifest
    assert json.loads((tmp_path / "out" / "metadata.json").read_text())["manifest"] == manifest


def test_metadata_has_threshold_and_ece_before_and_after(trained_tiny, tmp_path):
    """Training fits a temperature and a threshold on the validation split and reports ECE on the test
    split; conversion keeps the threshold and scores the .tflite's ECE before and after calibration."""
    trained = trained_tiny.metadata()
    calibration = trained["calibration"]
    assert calibration["temperature"] > 0 and calibration["val_nll_after"] <= calibration["val_nll_before"] + 1e-9
    assert isinstance(trained["threshold"], float) and 0 <= trained["threshold"] <= 1
    assert calibration["val_refused"] <= 0.05
    for key in ("ece", "ece_uncalibrated"):
        assert 0 <= trained["metrics"]["test"][key] <= 1
    meta = cv.convert(trained_tiny.model, tmp_path / "out", trained_tiny.data, quantize="fp32")
    written = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert written["threshold"] == trained["threshold"] and written["calibration"] == calibration
    test = written["metrics"]["test"]
    assert test == meta["metrics"]["test"]
    # the exported graph is the calibrated one: the .tflite's ECE matches training's (float32, same photos)
    assert test["ece"] == pytest.approx(trained["metrics"]["test"]["ece"], abs=0.01)
    assert test["ece_uncalibrated"] == pytest.approx(trained["metrics"]["test"]["ece_uncalibrated"], abs=0.01)
