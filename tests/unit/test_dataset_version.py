"""chalicelib/pipeline/dataset_version.py: which keys are training data, and the version of a listing."""
from __future__ import annotations

from chalicelib.pipeline.dataset_version import is_relevant, version_of
from chalicelib.pipeline.records import ObjectInfo


def test_version_depends_on_keys_and_etags_only():
    a = [ObjectInfo("daisy/1.jpg", '"aa"', 10), ObjectInfo("roses/2.jpg", "bb", 11), ObjectInfo("notes.md", "cc", 1)]
    b = list(reversed(a[:2]))
    assert version_of(a, "") == version_of(b, "")
    assert version_of(a, "") != version_of([ObjectInfo("daisy/1.jpg", "ab", 10), a[1]], "")
    assert len(version_of(a, "")) == 16
    assert is_relevant("p/daisy/1.JPG", "p/") and is_relevant("p/1.txt", "p/")
    assert not is_relevant("p/daisy/", "p/") and not is_relevant("p/.DS_Store", "p/") and not is_relevant("q/1.jpg", "p/")


def test_classify_and_predictions_are_never_training_data():
    for key in ("classify/a.jpg", "predictions/x.jsonl", "classify/roses/b.jpg"):
        assert not is_relevant(key, "")
    assert not is_relevant("datasets/flowers/classify/a.jpg", "datasets/flowers/")
    assert is_relevant("roses/classify.jpg", "") and is_relevant("classify.jpg", "")
    data = [ObjectInfo("roses/a.jpg", "1", 1)]
    assert version_of(data + [ObjectInfo("classify/b.jpg", "2", 1)], "") == version_of(data, "")
