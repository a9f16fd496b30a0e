"""A real training job with an EfficientNet-Lite preset (Lite0 at 96 px, a few real photos per class), then its
conversion, then a second job warm-started from the first: the feature cache, the label-issue search, the
calibration and familiarity gate, the conversion (every quantization, the gate's ops kept float in int8) and the
warm start all work with the preset, as they do with mobilenet_v2 and tiny_cnn (tests/integration/test_train.py,
test_feature_cache.py, test_familiarity_graph.py, test_label_issues_run.py)."""
from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest

from data_fixtures import Job, copy_photos, run_in_process
from test_feature_cache import _phase_one
from training import convert, train

PRESET = "efficientnet_lite0"
# 12 photos a class, 2 roses filed under daisy; 50/40/10 gives validation the 20 photos a familiarity gate needs.
SETTINGS = dict(preset=PRESET, image_size=96, epochs=1, head_epochs=8, batch_size=16, splits="50/40/10", seed=3)
PLANTED = 2


def run(job: Job, **env) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_in_process(job, train.main, **env)
    assert code == 0, out.getvalue()[-3000:]
    return out.getvalue()


@pytest.fixture(scope="module")
def lite_runs(tmp_path_factory, keras_home):
    """(first job, its log, second job warm-started from it, its log, the feature cache folder)."""
    root = tmp_path_factory.mktemp("lite")
    data = copy_photos(root / "data", 12)
    for photo in sorted((data / "roses").glob("*.jpg"))[:PLANTED]:
        shutil.move(photo, data / "daisy" / f"planted_{photo.name}")
    cache = root / "features"
    first = Job(root / "first", data).hyperparameters(**SETTINGS)
    first_log = run(first, FLOWERS_FEATURE_CACHE=str(cache))
    second = Job(root / "second", data).hyperparameters(**SETTINGS, warm_start=str(first.model))
    second_log = run(second, FLOWERS_FEATURE_CACHE=str(cache))
    return first, first_log, second, second_log, cache


def test_the_preset_trains_calibrates_and_fits_the_gate(lite_runs):
    first, log, *_ = lite_runs
    meta = first.metadata()
    assert meta["preset"] == PRESET and meta["image_size"] == 96 and meta["preprocessing"]["model"] == "(x - 127) / 128"
    assert meta["training"]["warm_start"] == ""
    # phase 2 ran over the preset's unfrozen layers (kept or not: one epoch need not beat 8 of the head)
    assert [h["phase"] for h in meta["training"]["history"]].count("fine_tune") == 1
    assert meta["dataset_counts"]["validation"] >= 20
    calibration = meta["calibration"]
    assert calibration["temperature"] > 0 and calibration["val_nll_after"] <= calibration["val_nll_before"] + 1e-9
    assert calibration["val_refused"] <= 0.05 and 0 < meta["threshold"] < 1
    gate = calibration["familiarity"]
    assert gate is not None and gate["classes"] == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    assert "familiarity_gate=yes" in log
    # 30 training photos at 96 px, Lite0 far from its 224: 0.58 measured (15 of 26), chance is 0.2
    assert meta["metrics"]["val_accuracy"] >= 0.4, meta["metrics"]


def test_the_label_issue_search_runs_and_finds_a_planted_rose(lite_runs):
    """On 60 photos at 96 px Lite0's phase-1 features are weak (out-of-fold accuracy 0.53 measured): one of the two
    roses filed under daisy ranks third of 16 flagged, the other is not flagged; a search that ran is what this
    checks; bench/label_noise.py measures its power."""
    first, *_ = lite_runs
    report = json.loads((first.output / "data" / "validation.json").read_text())
    issues = report["label_issues"]
    assert "skipped" not in issues and issues["photos"] == 60 and issues["count"] > 0
    top = issues["issues"][:5]
    planted = [issue for issue in top if "planted_" in issue["file"]]
    assert planted and all(i["given"] == "daisy" and i["suggested"] == "roses" for i in planted), top


def test_the_feature_cache_serves_the_warm_start(lite_runs):
    """The first job computes phase 1's features (ImageNet's backbone) and writes calibration's (its final
    backbone); the second starts from that backbone, so its phase 1 reads every photo and computes none."""
    first, first_log, second, second_log, cache = lite_runs
    hits, computed = _phase_one(first_log)
    assert hits == 0 and computed > 0
    assert any(cache.rglob("*.f32"))
    counts = second.metadata()["dataset_counts"]
    assert _phase_one(second_log) == (counts["train"] + counts["validation"] + counts["test"], 0)


def test_the_second_job_warm_starts_from_the_first(lite_runs):
    first, _, second, log, _ = lite_runs
    meta = second.metadata()
    assert meta["training"]["warm_start"] == str(first.model) and f"warm start from {first.model}" in log
    assert meta["training"]["head_epochs"] < SETTINGS["head_epochs"] or meta["training"]["head_epochs"] == 1
    # the warm weights keep what the first job learnt
    assert meta["metrics"]["val_accuracy"] >= first.metadata()["metrics"]["val_accuracy"] - 0.1


@pytest.mark.parametrize("mode", ["fp32", "int8"])
def test_the_conversion_keeps_the_model(lite_runs, tmp_path, mode):
    """fp32, and int8: the mode that must find the familiarity gate's ops in the preset's graph to keep them float."""
    first, *_ = lite_runs
    meta = convert.convert(first.model, tmp_path / "out", first.data, quantize=mode)
    (candidate,) = meta["conversion"]["candidates"]  # agreement with the SavedModel on 30 held-out photos
    # fp32: 29 of 30 measured (a near tie between two classes of a weak model); int8: the gate kept float
    assert candidate["held_out_agreement"] >= (0.95 if mode == "fp32" else 0.8), candidate
    # the threshold is a validation photo's own score, so that photo may fall either side of it in any mode
    assert candidate["held_out_refusal_agreement"] >= 0.9, candidate
    if mode == "int8":
        saved = first.model / "saved_model"
        assert convert.gate_tensors(convert.to_tflite(saved, "fp32"))  # found: denylisted from int8
    assert (tmp_path / "out" / "model.tflite").stat().st_size == meta["model"]["size_bytes"]
