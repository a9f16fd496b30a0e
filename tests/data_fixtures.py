"""Test data: paths to ../shared (FLOWERS_SHARED overrides), small data sets made in the test, image bytes
and backbone-like features made in memory, and training job folders with their SM_* environment. Imported
by the tests; conftest.py holds the fixtures."""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FLOWERS_SHARED", ROOT.parent / "shared"))
PHOTOS = SHARED / "datasets" / "flower_photos"
WEIGHTS = SHARED / "weights"
CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_HOME", str(ROOT / ".keras"))


def colour_image(colour: tuple[int, int, int], seed: int, size: int = 48) -> Image.Image:
    """A noisy patch of one colour: classes a tiny CNN separates in a few epochs."""
    rng = np.random.default_rng(seed)
    base = np.array(colour, np.float64)[None, None, :] * rng.uniform(0.7, 1.0)
    pixels = base + rng.normal(0, 18, (size, size, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def make_folder_dataset(root: Path, per_class: int = 14, colours=COLOURS, ext: str = ".png", start: int = 0) -> Path:
    for c, (label, colour) in enumerate(colours.items()):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(start, start + per_class):
            colour_image(colour, seed=c * 1000 + i).save(folder / f"{label}_{i}{ext}")
    return root


def make_modelarts_dataset(root: Path, per_class: int = 14, colours=COLOURS) -> Path:
    """ModelArts "image classification" layout: name.jpg beside name.txt holding the label."""
    root.mkdir(parents=True, exist_ok=True)
    for c, (label, colour) in enumerate(colours.items()):
        for i in range(per_class):
            colour_image(colour, seed=c * 1000 + i).save(root / f"{label}_{i}.jpg", quality=95)
            (root / f"{label}_{i}.txt").write_text(label + "\n")
    return root


def require(present: bool, what: str) -> None:
    """A core test needs `what`. Under CI=true its absence fails the test, saying what is missing;
    elsewhere the test is skipped with that reason (`make test` prints skip reasons)."""
    if present:
        return
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{what} is missing, and CI must run every core test", pytrace=False)
    pytest.skip(f"{what} is missing")


def require_photos() -> None:
    require(PHOTOS.is_dir(), f"the shared photos ({PHOTOS}; FLOWERS_SHARED names another shared folder)")


def copy_photos(root: Path, per_class: int, classes=CLASSES, layout: str = "folder") -> Path:
    """The first `per_class` real photos of each class from ../shared, in either layout."""
    require_photos()
    for label in classes:
        for src in sorted((PHOTOS / label).glob("*.jpg"))[:per_class]:
            if layout == "folder":
                (root / label).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, root / label / src.name)
            else:
                root.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, root / src.name)
                (root / src.with_suffix(".txt").name).write_text(label)
    return root


@dataclass
class Job:
    """The folders of one SageMaker-style training job, and the environment that points at them."""

    root: Path
    data: Path

    @property
    def config(self) -> Path:
        return self.root / "input" / "config"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def hyperparameters(self, **values) -> "Job":
        self.config.mkdir(parents=True, exist_ok=True)
        # SageMaker passes every value as a string.
        (self.config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in values.items()}))
        return self

    def env(self, **extra) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "SM_INPUT_CONFIG_DIR": str(self.config),
            "SM_CHANNEL_TRAINING": str(self.data),
            "SM_MODEL_DIR": str(self.model),
            "SM_OUTPUT_DIR": str(self.output),
            "SM_OUTPUT_DATA_DIR": str(self.output / "data"),
            "SM_CHECKPOINT_DIR": str(self.checkpoints),
            "TRAINING_JOB_NAME": "test-job",
            "PYTHONPATH": str(ROOT),
        })
        env.update(extra)
        return env

    def metadata(self) -> dict:
        return json.loads((self.model / "metadata.json").read_text())


TINY = {"preset": "tiny_cnn", "image_size": 32, "epochs": 2, "head_epochs": 3, "batch_size": 8}


def run_in_process(job: Job, entry, **extra_env) -> int:
    """Run an entrypoint with the job's SM_* environment set, restoring os.environ afterwards."""
    saved = dict(os.environ)
    os.environ.update(job.env(**extra_env))
    try:
        return entry([])
    finally:
        os.environ.clear()
        os.environ.update(saved)


# The six kinds of bad upload, ModelArts layout: file -> the reason training's validation.json gives.
BAD_UPLOADS = {
    "bad_empty.jpg": "empty_file",  # scan: zero bytes
    "bad_text.jpg": "not_an_image",  # decode: text saved as .jpg
    "bad_truncated.jpg": "corrupt",  # decode: the first half of a real JPEG
    "bad_unlabelled.jpg": "no_label",  # scan: no .txt beside it
    "bad_two_labels.jpg": "multi_label",  # scan: "daisy" and "roses"
    "bad_blank_label.jpg": "empty_label",  # scan: an empty .txt
}


def write_bad_uploads(root: Path) -> dict[str, str]:
    """The BAD_UPLOADS files in `root` (real photos where the photo itself is fine). Returns BAD_UPLOADS."""
    require_photos()
    root.mkdir(parents=True, exist_ok=True)
    photos = sorted((PHOTOS / "daisy").glob("*.jpg"))[-4:]  # far from the ones the tests train on
    (root / "bad_empty.jpg").write_bytes(b"")
    (root / "bad_text.jpg").write_text("this is a shopping list, not a photo\n")
    whole = photos[0].read_bytes()
    (root / "bad_truncated.jpg").write_bytes(whole[: len(whole) // 2])
    shutil.copyfile(photos[1], root / "bad_unlabelled.jpg")
    shutil.copyfile(photos[2], root / "bad_two_labels.jpg")
    (root / "bad_two_labels.txt").write_text("daisy\nroses\n")
    shutil.copyfile(photos[3], root / "bad_blank_label.jpg")
    (root / "bad_blank_label.txt").write_text("")
    for name in ("bad_empty", "bad_text", "bad_truncated"):
        (root / f"{name}.txt").write_text("daisy\n")
    return dict(BAD_UPLOADS)


# Image bytes of every kind, made in memory (unit/test_bounded_decoding.py, integration/test_oversized_images.py).
def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    if fmt == "PNG":
        kwargs.setdefault("compress_level", 0)  # stored: these tests make many megapixels of PNG
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()


def photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth colour regions, edges and grain: a stand-in for a photo, with an asymmetric layout."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(coarse, np.float64) + rng.normal(0, 10, (height, width, 3))
    pixels[: height // 3, : width // 4] = (250, 20, 20)  # a red block top left: orientation shows
    pixels[height // 2:, width // 2: width // 2 + width // 20] = (10, 10, 200)  # a blue bar
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def sixteen_bit_png(width: int, height: int) -> bytes:
    """A 16-bit grayscale PNG (a ramp), written row by row: little memory to make, ~1 MB at 9000 x 9000."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + np.linspace(1000, 60000, width).astype(">u2").tobytes()
    compressor = zlib.compressobj(6)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height: decoding it would fail as corrupt."""
    data = bytearray(encode(Image.new("RGB", (64, 64), (9, 99, 199)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (64, 64), (9, 99, 199)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


# Features in clusters (unit/test_familiarity.py, integration/test_familiarity_graph.py).
def clusters(rng: np.random.Generator, n: int, dims: int = 48, classes: int = 3, spread: float = 0.3):
    """Photos' features around `classes` directions (what a backbone's pooled features look like)."""
    centres = np.abs(rng.normal(size=(classes, dims))) * 2
    labels = np.arange(n) % classes
    features = np.abs(centres[labels] + spread * rng.normal(size=(n, dims)))
    return features, labels, centres
