"""chalicelib/pipeline/relabel.py: a model whose data set's labels changed since production's (another class set,
or more than max_relabel_share of the photos both hold relabelled, matched by content) waits for a person."""
from __future__ import annotations

import pytest

from chalicelib.pipeline import relabel
from chalicelib.pipeline.promotion import GateResult

CLASSES = ["daisy", "roses", "tulips"]


def files(*entries):
    """Manifest file entries: (key, content) -> key, the content's ETag and size."""
    return [{"key": key, "etag": f"etag-{content}", "size": 100 + len(content)} for key, content in entries]


def photos(n, start=0, folder=None):
    """n photos spread over the classes, each with its own content."""
    return [(f"{folder or CLASSES[i % 3]}/p{i}.jpg", f"c{i}") for i in range(start, start + n)]


def compare(before, after, before_classes=CLASSES, after_classes=CLASSES, max_share=0.05):
    return relabel.compare(files(*before), files(*after), before_classes, after_classes, max_share, "prod1")


def test_an_honest_growth_is_no_relabel():
    found = compare(photos(100), photos(150))
    assert not found.hold and (found.shared, found.relabelled) == (100, 0)
    assert found.reason == "labels: 0 of 100 photos in both data sets relabelled (0.0%), classes unchanged"


def test_a_photo_moved_to_another_class_folder_is_caught_by_its_content():
    before = photos(10)
    after = [("tulips/p0.jpg", "c0")] + before[1:]  # p0 was daisy/p0.jpg: moved, same bytes
    found = compare(before, after)
    assert found.hold and (found.shared, found.relabelled) == (10, 1)
    assert "1 of 10 photos in both data sets relabelled (10.0%), more than max_relabel_share 5%, e.g. " in found.reason
    assert "daisy/p0.jpg -> tulips/p0.jpg: daisy -> tulips" in found.reason
    assert found.reason.startswith("labels changed since production prod1: ") and found.reason.endswith(": a person decides")


def test_the_share_is_a_strict_limit_and_configurable():
    before = photos(100)
    after = [(f"lilies/p{i}.jpg", f"c{i}") if i < 5 else entry for i, entry in enumerate(before)]  # 5 relabelled
    assert not compare(before, after).hold  # 5 %: not more than 5 %
    assert compare(before, after, max_share=0.04).hold
    six = [("lilies/p5.jpg", "c5") if key == "tulips/p5.jpg" else (key, c) for key, c in after]
    held = compare(before, six)
    assert held.hold and held.relabelled == 6 and len(held.examples) == relabel.EXAMPLES and held.reason.count("->") == 2 * 3
    assert "; ..." in held.reason  # more than the examples it names
    assert not compare(before, six, max_share=1.0).hold  # 1.0: the share check off


def test_a_changed_key_with_the_same_label_and_new_bytes_under_an_old_key_are_not_relabels():
    before = photos(10)
    renamed = [("daisy/renamed.jpg", "c0")] + before[1:]  # same class folder, new name
    assert not compare(before, renamed).hold
    replaced = [("daisy/p0.jpg", "new bytes")] + before[1:]  # another photo under the old key: not shared
    found = compare(before, replaced)
    assert not found.hold and found.shared == 9


def test_a_copy_into_a_second_class_counts_as_a_relabel():
    """Training skips a photo whose copies disagree: its label set changed."""
    before = photos(10)
    found = compare(before, before + [("roses/copy.jpg", "c0")])
    assert found.hold and found.relabelled == 1 and "daisy -> daisy+roses" in found.reason


def test_changed_classes_hold_the_model_whatever_the_photos():
    found = compare(photos(30), photos(30) + photos(3, 30, "sunflowers"), after_classes=CLASSES + ["sunflowers"])
    assert found.hold and found.added == ("sunflowers",) and found.removed == ()
    assert "the classes changed (added sunflowers)" in found.reason
    gone = compare(photos(30), photos(30), after_classes=["daisy", "roses"])
    assert gone.hold and "the classes changed (removed tulips)" in gone.reason
    both = compare(photos(30), [("tulips/p0.jpg", "c1")], after_classes=["lilies"])  # everything at once
    assert both.hold and "added lilies; removed daisy, roses, tulips" in both.reason and "1 of 1 photos" in both.reason
    assert not compare(photos(30), photos(30), after_classes=list(reversed(CLASSES))).hold  # a set, not a list


def test_label_files_are_compared_by_their_etag():
    """name.jpg + name.txt: the label's text is not in the manifest; its file's ETag tells a change."""
    before = [("a.jpg", "ca"), ("a.txt", "roses"), ("b.jpg", "cb"), ("b.txt", "tulips"), ("c.jpg", "cc")]  # c: no label
    moved = [("x/a2.jpg", "ca"), ("x/a2.txt", "roses"), ("b.jpg", "cb"), ("b.txt", "tulips")]
    assert not compare(before, moved).hold  # moved with its label file: the same label
    relabelled = [("a.jpg", "ca"), ("a.txt", "daisy"), ("b.jpg", "cb"), ("b.txt", "tulips")]
    found = compare(before, relabelled)
    assert found.hold and (found.shared, found.relabelled) == (2, 1)
    assert "a.jpg: label file a.txt (etag-ros) -> label file a.txt (etag-dai)" in found.reason


def test_class_folders_are_the_image_s_parent_folder_as_training_reads_them():
    labelled = relabel.labelled_photos(files(("roses/a.jpg", "1"), ("top.jpg", "2"), ("x/tulips/b.png", "3"), ("notes.md", "4")))
    assert {content: {k: label.value for k, label in keys.items()} for content, keys in labelled.items()} == {
        ("etag-1", 101): {"roses/a.jpg": "roses"}, ("etag-3", 101): {"x/tulips/b.png": "tulips"}}
    assert relabel.folder_classes(files(("roses/a.jpg", "1"), ("x/tulips/b.png", "3"))) == ["roses", "tulips"]
    assert relabel.folder_classes(files(("a.jpg", "1"), ("a.txt", "2"))) == []


def test_the_gate_s_approval_stands_only_when_the_labels_hold():
    approved = GateResult(True, "test accuracy 0.9 vs production prod1 0.88")
    kept = relabel.gate(approved, compare(photos(10), photos(12)))
    assert kept.approve and kept.reason == (
        "test accuracy 0.9 vs production prod1 0.88; labels: 0 of 10 photos in both data sets relabelled (0.0%), classes unchanged")
    held = relabel.gate(approved, compare(photos(10), [("tulips/p0.jpg", "c0")] + photos(9, 1)))
    assert not held.approve and held.reason.startswith("labels changed since production prod1: 1 of 10")
    assert held.reason.endswith("(the gate: test accuracy 0.9 vs production prod1 0.88)")
    pending = GateResult(False, "test accuracy 0.7 is below min_accuracy 0.80")
    assert not relabel.gate(pending, compare(photos(10), photos(10))).approve
    assert not relabel.gate(approved, relabel.unknown("prod1", "AccessDenied (GetObject): Access Denied")).approve


@pytest.mark.parametrize("entry", [{"key": "roses/a.jpg"}, {"key": "roses/a.jpg", "etag": 3, "size": "big"}, {"no": "key"}, "text"])
def test_odd_entries_read_without_raising(entry):
    relabel.labelled_photos([entry])
