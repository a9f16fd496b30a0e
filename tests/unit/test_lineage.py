"""chalicelib/pipeline/lineage.py's plan: which of a manifest's files are as recorded, which come back from their
recorded version, and which cannot (no version recorded)."""
from __future__ import annotations

from chalicelib.pipeline import lineage, manifest
from chalicelib.pipeline.records import ObjectInfo

DATASET = "s3://data/datasets/flowers/"


def _record(*objects: ObjectInfo) -> dict:
    return manifest.parse(manifest.record(DATASET, "0123456789abcdef", objects))


def test_files_gone_or_replaced_come_back_from_their_recorded_version():
    record = _record(ObjectInfo("daisy/a.jpg", "e1", 10, "v1"), ObjectInfo("daisy/b.jpg", "e2", 20, "v2"),
                     ObjectInfo("roses/c.jpg", "e3", 30, "v3"))
    now = [ObjectInfo("daisy/a.jpg", "e1", 10, "v1"),  # as recorded
           ObjectInfo("roses/c.jpg", "e9", 31, "v9"),  # replaced by an upload
           ObjectInfo("tulips/new.jpg", "e4", 5, "v4")]  # added since: left alone
    found = lineage.plan(record, now)
    assert found.version == "0123456789abcdef" and found.dataset_uri == DATASET
    assert found.intact == 1
    assert found.to_restore == (("daisy/b.jpg", "v2"), ("roses/c.jpg", "v3"))
    assert found.unrecoverable == ()


def test_the_same_bytes_under_a_new_version_are_intact_so_a_second_restore_does_nothing():
    record = _record(ObjectInfo("daisy/a.jpg", "e1", 10, "v1"))
    # after a restore the copy is a new version with the recorded bytes (the same ETag for a single-part upload)
    assert lineage.plan(record, [ObjectInfo("daisy/a.jpg", '"e1"', 10, "v7")]).intact == 1
    assert lineage.plan(record, [ObjectInfo("daisy/a.jpg", "e1", 11, "v7")]).to_restore == (("daisy/a.jpg", "v1"),)


def test_without_a_recorded_version_a_changed_file_cannot_come_back():
    """Local mode's manifests (and an unversioned bucket's) name no versions."""
    record = _record(ObjectInfo("a.jpg", "e1", 10), ObjectInfo("b.jpg", "e2", 20), ObjectInfo("c.jpg", "e3", 30))
    found = lineage.plan(record, [ObjectInfo("a.jpg", "e1", 10), ObjectInfo("b.jpg", "changed", 20)])
    assert found.intact == 1 and found.to_restore == ()
    assert found.unrecoverable == ("b.jpg", "c.jpg")
