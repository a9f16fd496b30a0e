"""training.dataset: both layouts, every bad-file reason, stable hash split."""
import json
import shutil
from collections import Counter

import pytest
from PIL import Image

from data_fixtures import colour_image, copy_photos, make_folder_dataset, make_modelarts_dataset
from training import dataset as ds


def reasons(result) -> dict[str, str]:
    return {s.path: s.reason for s in result.skipped}


def test_folder_layout_any_depth_and_extension_case(tmp_path):
    root = tmp_path / "data"
    for label, ext in (("daisy", ".JPG"), ("roses", ".Jpeg"), ("tulips", ".webp"), ("sunflowers", ".BMP")):
        folder = root / "deep" / "prefix" / label
        folder.mkdir(parents=True)
        for i in range(3):
            colour_image((i * 40, 100, 200), seed=hash(label) % 1000 + i).save(folder / f"x{i}{ext}")
    (root / "LICENSE.txt").write_text("credits")
    found = ds.scan(root)
    assert found.layout == "folder_per_class"
    assert Counter(e.label for e in found.examples) == {"daisy": 3, "roses": 3, "tulips": 3, "sunflowers": 3}
    assert found.ignored == ["LICENSE.txt"]
    assert found.skipped == []


def test_modelarts_layout_labels_are_trimmed(tmp_path):
    root = make_modelarts_dataset(tmp_path / "data" / "flowers_split", per_class=2)
    (root / "red_0.txt").write_bytes("\ufeff  red \r\n".encode("utf-8"))  # BOM, spaces, CRLF
    found = ds.scan(tmp_path / "data")
    assert found.layout == "image_classification"
    assert {e.path.split("/")[-1]: e.label for e in found.examples}["red_0.jpg"] == "red"
    assert Counter(e.label for e in found.examples) == {"red": 2, "green": 2, "blue": 2}


def test_every_bad_file_is_skipped_with_its_reason(tmp_path):
    root = make_modelarts_dataset(tmp_path / "data", per_class=6)
    (root / "empty.jpg").write_bytes(b"")
    (root / "empty.txt").write_text("red")
    (root / "notimage.png").write_text("plain text")
    (root / "notimage.txt").write_text("red")
    whole = (root / "red_0.jpg").read_bytes()
    colour_image((10, 10, 10), seed=99, size=200).save(root / "trunc.jpg")
    (root / "trunc.jpg").write_bytes((root / "trunc.jpg").read_bytes()[:400])
    (root / "trunc.txt").write_text("red")
    colour_image((1, 2, 3), seed=5).save(root / "nolabel.jpg")
    colour_image((3, 2, 1), seed=6).save(root / "blank.jpg")
    (root / "blank.txt").write_text("  \r\n")
    colour_image((9, 9, 9), seed=7).save(root / "multi.jpg")
    (root / "multi.txt").write_text("red\ngreen\n")
    Image.new("RGB", (20, 20)).save(root / "tiny.png")
    (root / "tiny.txt").write_text("red")
    (root / "conflict.jpg").write_bytes(whole)  # same bytes as red_0.jpg, another label
    (root / "conflict.txt").write_text("green")
    (root / "copy.jpg").write_bytes((root / "blue_1.jpg").read_bytes())  # same bytes, same label
    (root / "copy.txt").write_text("blue")

    data = ds.load(root, 32, min_images_per_class=3)
    got = reasons(data)
    assert got == {
        "empty.jpg": "empty_file",
        "notimage.png": "not_an_image",
        "trunc.jpg": "corrupt",
        "nolabel.jpg": "no_label",
        "blank.jpg": "empty_label",
        "multi.jpg": "multi_label",
        "tiny.png": "too_small",
        "conflict.jpg": "conflicting_labels",
        "red_0.jpg": "conflicting_labels",
        "copy.jpg": "duplicate",
    }
    report = data.report()
    assert report["usable_images"] == 17  # 18 good photos minus red_0 (its copy carries another label)
    assert report["classes"]["red"]["total"] == 5
    assert report["skipped_by_reason"]["conflicting_labels"] == 2
    assert all(item["detail"] for item in report["skipped"])


def test_decompression_bomb_is_skipped(tmp_path, monkeypatch):
    root = make_folder_dataset(tmp_path / "data", per_class=5)
    Image.new("RGB", (400, 400)).save(root / "red" / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    data = ds.load(root, 32)
    assert reasons(data)["red/bomb.png"] == "decompression_bomb"


def test_split_is_stable_when_photos_are_added(tmp_path):
    root = make_folder_dataset(tmp_path / "data", per_class=40)
    before = {e.path: ds.split_of(e.sha256, (0.8, 0.1, 0.1)) for e in ds.scan(root).examples}
    make_folder_dataset(root, per_class=40, start=40)  # 120 new photos
    after = {e.path: ds.split_of(e.sha256, (0.8, 0.1, 0.1)) for e in ds.scan(root).examples}
    assert len(after) == 240
    assert all(after[path] == split for path, split in before.items())
    shares = Counter(after.values())
    assert 0.65 < shares["train"] / 240 < 0.92 and shares["validation"] and shares["test"]


def test_split_follows_content_not_name(tmp_path):
    root = make_folder_dataset(tmp_path / "a", per_class=10)
    moved = tmp_path / "b"
    shutil.copytree(root, moved / "renamed" / "prefix")
    first = sorted(ds.split_of(e.sha256, (0.8, 0.1, 0.1)) for e in ds.scan(root).examples)
    second = sorted(ds.split_of(e.sha256, (0.8, 0.1, 0.1)) for e in ds.scan(moved).examples)
    assert first == second


def test_dataset_version_changes_with_content(tmp_path):
    root = make_folder_dataset(tmp_path / "data", per_class=3)
    v1 = ds.scan(root).version
    assert ds.scan(root).version == v1
    colour_image((5, 5, 5), seed=1).save(root / "red" / "new.png")
    assert ds.scan(root).version != v1


def test_too_few_images_fails_but_reports(tmp_path):
    root = make_folder_dataset(tmp_path / "data", per_class=6)
    for extra in list((root / "blue").iterdir())[2:]:
        extra.unlink()
    with pytest.raises(ds.DatasetError, match=r"blue \(2\)") as err:
        ds.load(root, 32, min_images_per_class=5)
    assert err.value.dataset.report()["classes"]["red"]["total"] == 6


def test_one_class_is_not_enough(tmp_path):
    root = make_folder_dataset(tmp_path / "data", per_class=6, colours={"red": (200, 0, 0)})
    with pytest.raises(ds.DatasetError, match="at least 2 classes"):
        ds.load(root, 32)


def test_real_photos_both_layouts_agree(tmp_path):
    folder = ds.load(copy_photos(tmp_path / "folder", 4), 64, min_images_per_class=1)
    modelarts = ds.load(copy_photos(tmp_path / "ma", 4, layout="modelarts"), 64, min_images_per_class=1)
    assert folder.scan.layout == "folder_per_class" and modelarts.scan.layout == "image_classification"
    assert folder.labels == modelarts.labels == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    for name in ds.SPLITS:
        assert sorted(folder.splits[name].labels.tolist()) == sorted(modelarts.splits[name].labels.tolist())
    assert sum(len(s.paths) for s in folder.splits.values()) == 20


def test_report_is_json(tmp_path):
    data = ds.load(make_folder_dataset(tmp_path / "data", per_class=5), 32)
    ds.write_report(data, tmp_path / "out" / "validation.json")
    report = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert set(report["classes"]) == {"red", "green", "blue"}
    assert report["dataset_version"] == data.scan.version
