"""training.train: the SageMaker container contract, end to end on tiny real models."""
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from chalicelib.contract.training_job import parse_metric_line
from data_fixtures import ROOT, TINY, Job, copy_photos, make_folder_dataset, run_in_process
from training import train


def event_tags(folder: Path) -> set[str]:
    import tensorflow as tf

    tags = set()
    for path in folder.rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(f"{path.parent.name}/{value.tag}" for value in event.summary.value)
    return tags


def test_sagemaker_contract_end_to_end(job, capsys):
    # The pipeline hands the run's manifest (chalicelib/pipeline/manifest.py) to the job in its environment.
    manifest = {"uri": "s3://artifacts/manifests/0123456789abcdef.json", "sha256": "ab" * 32}
    assert run_in_process(job, train.main, FLOWERS_MANIFEST_URI=manifest["uri"], FLOWERS_MANIFEST_SHA256=manifest["sha256"]) == 0
    out = capsys.readouterr().out

    assert (job.model / "saved_model" / "saved_model.pb").exists()
    assert (job.model / "model.keras").exists()
    assert (job.model / "labels.txt").read_text().split() == ["blue", "green", "red"]
    meta = job.metadata()
    assert meta["preset"] == "tiny_cnn" and meta["image_size"] == 32
    assert meta["hyperparameters"]["epochs"] == 2 and meta["source_job"] == "test-job"
    assert meta["manifest"] == manifest
    assert meta["input"] == {"shape": [1, 32, 32, 3], "dtype": "float32", "range": [0, 255]}
    assert 0 <= meta["metrics"]["test"]["accuracy"] <= 1
    assert len(meta["metrics"]["test"]["confusion_matrix"]) == 3
    assert not (job.output / "failure").exists()

    report = json.loads((job.output / "data" / "validation.json").read_text())
    assert report["usable_images"] == 42 and report["dataset_version"] == meta["dataset_version"]

    # Metric lines SageMaker's regexes read: one per epoch of each phase, then the final one.
    metrics = [parse_metric_line(line) for line in out.splitlines()]
    per_epoch = [m for m, line in zip(metrics, out.splitlines()) if "epoch=" in line]
    assert len(per_epoch) == meta["training"]["head_epochs"] + len([h for h in meta["training"]["history"] if h["phase"] == "fine_tune"])
    assert all({"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(m) for m in per_epoch)
    assert any("test_accuracy" in m for m in metrics)

    tags = event_tags(job.output / "data" / "tensorboard")
    for tag in ("train/epoch_loss", "train/epoch_accuracy", "train/epoch_learning_rate",
                "validation/epoch_loss", "validation/epoch_accuracy",
                "test/confusion_matrix", "test/precision/red", "test/recall/blue"):
        assert tag in tags, tag


def test_learns_separable_colours(tmp_path):
    job = Job(tmp_path / "job", make_folder_dataset(tmp_path / "data", per_class=25)).hyperparameters(
        preset="tiny_cnn", image_size=32, epochs=6, head_epochs=15, patience=20, batch_size=8, augmentation="false")
    assert run_in_process(job, train.main) == 0
    meta = job.metadata()
    assert meta["metrics"]["val_accuracy"] >= 0.9
    assert meta["metrics"]["test"]["accuracy"] >= 0.8


def test_same_seed_same_model_with_augmentation(tmp_path):
    """A seed reproduces the model bit for bit, augmentation included; another seed does not."""
    data = make_folder_dataset(tmp_path / "data", per_class=10)

    def weights(name: str, seed: int) -> list:
        import keras

        job = Job(tmp_path / name, data).hyperparameters(**dict(TINY, epochs=3, seed=seed))
        assert run_in_process(job, train.main) == 0
        assert job.metadata()["training"]["history"][-1]["phase"] == "fine_tune"
        return keras.saving.load_model(job.model / "model.keras", compile=False).get_weights()

    first, again, other = weights("first", 5), weights("again", 5), weights("other", 6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_bad_hyperparameters_fail_with_failure_file(job):
    job.hyperparameters(preset="tiny_cnn", epochz=3)
    assert run_in_process(job, train.main) == 1
    assert "unknown hyperparameter 'epochz'" in (job.output / "failure").read_text()
    assert not job.model.exists()


def test_a_weights_file_missing_from_the_image_fails_the_job_with_its_name(job):
    """The Lambda and training's parser pass any weights path (chalicelib/contract/hyperparameters.py): only the job
    can see its image, and it fails when it builds the model, naming the file."""
    job.hyperparameters(**dict(TINY, weights="/nonexistent/weights.h5"))
    assert run_in_process(job, train.main) == 1
    failure = (job.output / "failure").read_text()
    assert failure == "weights: '/nonexistent/weights.h5' is neither imagenet, none nor an existing file in the training image"
    assert not job.model.exists()


def test_too_small_data_set_fails_and_still_reports(tmp_path):
    data = make_folder_dataset(tmp_path / "data", per_class=3)
    (data / "red" / "junk.jpg").write_text("not a photo")
    job = Job(tmp_path / "job", data).hyperparameters(**TINY)
    assert run_in_process(job, train.main) == 1
    failure = (job.output / "failure").read_text()
    assert "at least 5 usable images" in failure and "red (3)" in failure
    report = json.loads((job.output / "data" / "validation.json").read_text())
    assert report["skipped"][0]["path"] == "red/junk.jpg" and report["skipped"][0]["reason"] == "not_an_image"


def test_time_budget_stops_cleanly_and_exports(tmp_path):
    job = Job(tmp_path / "job", make_folder_dataset(tmp_path / "data", per_class=20)).hyperparameters(
        preset="tiny_cnn", image_size=32, epochs=1000, head_epochs=1000, patience=1000, batch_size=4, max_training_time=12)
    assert run_in_process(job, train.main) == 0  # how long past its budget a run ends: bench/time_budget.py
    meta = job.metadata()
    assert meta["training"]["stopped_by_time_budget"] is True
    assert meta["training"]["head_epochs"] < 1000
    assert (job.model / "saved_model" / "saved_model.pb").exists()


def test_head_checkpoint_is_reused_on_restart(job, capsys):
    assert run_in_process(job, train.main) == 0
    first = job.metadata()
    assert (job.checkpoints / "head.weights.h5").exists()
    capsys.readouterr()
    assert run_in_process(job, train.main) == 0  # same data and hyperparameters: a restarted job
    assert "resumed: head weights" in capsys.readouterr().out
    again = job.metadata()["training"]
    assert again["resumed"] is True and first["training"]["resumed"] is False
    assert again["head_epochs"] == first["training"]["head_epochs"] > 0


def test_checkpoints_of_another_run_are_not_reused(job, capsys):
    assert run_in_process(job, train.main) == 0
    job.hyperparameters(**dict(TINY, seed=7))
    capsys.readouterr()
    assert run_in_process(job, train.main) == 0
    assert "resumed" not in capsys.readouterr().out


def test_spot_interruption_resumes_fine_tuning(tmp_path):
    """Kill the job mid fine-tuning (as a spot reclaim does), start it again: it goes on, not over."""
    job = Job(tmp_path / "job", make_folder_dataset(tmp_path / "data", per_class=20)).hyperparameters(
        preset="tiny_cnn", image_size=32, epochs=40, head_epochs=2, patience=100, batch_size=4)
    cmd = [sys.executable, "-m", "training.train"]
    proc = subprocess.Popen(cmd, env=job.env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "phase=fine_tune epoch=5/" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert any("phase=fine_tune epoch=5/" in line for line in seen), "".join(seen)[-2000:]
    result = subprocess.run(cmd, env=job.env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "resumed: head weights" in result.stdout
    fine_tune_epochs = [line for line in result.stdout.splitlines() if line.startswith("phase=fine_tune epoch=")]
    first_epoch = int(fine_tune_epochs[0].split("epoch=")[1].split("/")[0])
    assert first_epoch >= 5, fine_tune_epochs[:2]  # continued after the last backed-up epoch
    assert not (job.checkpoints / "fine_tune").exists()  # removed once the run completes


def test_warm_start_when_classes_match(tmp_path, trained_tiny):
    job = Job(tmp_path / "job", trained_tiny.data).hyperparameters(
        preset="tiny_cnn", image_size=32, epochs=0, head_epochs=1, batch_size=8, warm_start=str(trained_tiny.model))
    assert run_in_process(job, train.main) == 0
    meta = job.metadata()
    assert meta["training"]["warm_start"] == str(trained_tiny.model)
    # One head epoch from the warm weights keeps the accuracy of the trained model.
    assert meta["metrics"]["val_accuracy"] >= trained_tiny.metadata()["metrics"]["val_accuracy"] - 0.1

    other = Job(tmp_path / "other", make_folder_dataset(tmp_path / "other_data", per_class=6, colours={"a": (1, 2, 3), "b": (200, 100, 0)}))
    other.hyperparameters(preset="tiny_cnn", image_size=32, epochs=0, head_epochs=1, warm_start=str(trained_tiny.model))
    assert run_in_process(other, train.main) == 0
    assert other.metadata()["training"]["warm_start"] == "skipped: classes differ"


def test_mobilenet_v2_imagenet_features_are_computed_once(tmp_path, keras_home, monkeypatch):
    """Phase 1 runs the backbone once per split, however many head epochs there are."""
    calls = []
    real = train._features
    monkeypatch.setattr(train, "_features", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    job = Job(tmp_path / "job", copy_photos(tmp_path / "data", 8, layout="modelarts")).hyperparameters(
        preset="mobilenet_v2", image_size=96, epochs=0, head_epochs=6, patience=10, batch_size=16)
    assert run_in_process(job, train.main) == 0
    meta = job.metadata()
    assert meta["hyperparameters"]["weights"] == "" and meta["training"]["head_epochs"] == 6
    # Phase 1: train, its mirror image (augmentation) and validation, each once; the test split's
    # phase-1 features for the label issues (train's and validation's are phase 1's own); then
    # calibrate()'s pass of the final backbone over train, validation and test (the familiarity gate, the scores).
    counts = meta["dataset_counts"]
    assert sorted(calls) == sorted([counts["train"], counts["train"], counts["validation"], counts["test"],
                                    counts["train"], counts["validation"], counts["test"]])
    # Pretrained features separate real flowers far above chance (0.2) even from 32 photos.
    assert meta["metrics"]["val_accuracy"] > 0.4 or meta["metrics"]["test"]["accuracy"] > 0.4


def test_resnet50_without_pretrained_weights(tmp_path):
    job = Job(tmp_path / "job", make_folder_dataset(tmp_path / "data", per_class=6)).hyperparameters(
        preset="resnet_v1_50", weights="none", image_size=32, epochs=1, head_epochs=1, batch_size=8)
    assert run_in_process(job, train.main) == 0
    meta = job.metadata()
    assert meta["preset"] == "resnet_v1_50" and meta["training"]["history"][-1]["phase"] == "fine_tune"
    import keras

    from training.presets import custom_objects

    model = keras.saving.load_model(job.model / "model.keras", custom_objects=custom_objects())
    x = np.full((1, 32, 32, 3), 128.0, np.float32)
    assert model.predict(x, verbose=0).shape == (1, 3)
