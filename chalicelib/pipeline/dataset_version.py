"""Which objects make up the data set, and the version that names what a run trains on.

The version is a hash of every relevant key (relative to the prefix) and its ETag, so the
same objects always give the same version: the job names derive from it, and a second run
for a version that already had one is never started (at most one job per data set version).
"""
from __future__ import annotations

import hashlib
from typing import Iterable

from chalicelib.contract.bucket_layout import CLASSIFY_PREFIX, PREDICTIONS_PREFIX
from chalicelib.contract.imaging import has_image_extension
from chalicelib.pipeline.records import ObjectInfo
from chalicelib.ports import ObjectStore


# Batch classification's inbox and answers (chalicelib/pipeline/batch_classify.py): in the bucket, never training data
# (locally the data set is the whole bucket folder, so they lie inside it).
NOT_DATA = (CLASSIFY_PREFIX, PREDICTIONS_PREFIX)


def is_relevant(key: str, prefix: str) -> bool:
    """Photos and their `.txt` labels under the prefix; folder markers, dot-files, classify/ and predictions/ are not data."""
    if not key.startswith(prefix) or key.endswith("/") or key[len(prefix):].startswith(NOT_DATA):
        return False
    name = key.rsplit("/", 1)[-1]
    if not name or name.startswith("."):
        return False
    return has_image_extension(name) or name.lower().endswith(".txt")


def version_of(objects: Iterable[ObjectInfo], prefix: str) -> str:
    digest = hashlib.sha256()
    lines = sorted(f"{o.key[len(prefix):]}\t{o.etag.strip(chr(34))}\n" for o in objects if is_relevant(o.key, prefix))
    for line in lines:
        digest.update(line.encode())
    return digest.hexdigest()[:16]


def listing(objects: ObjectStore, dataset_uri: str) -> list[ObjectInfo]:
    """The data set as it is now: its relevant objects (keys relative to the data set's prefix)."""
    return [o for o in objects.list(dataset_uri) if is_relevant(o.key, "")]
