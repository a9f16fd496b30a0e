"""Lineage that can always be rebuilt: what keeps a run's photos, its manifest and its model, and how the photos are
put back.

What the cloud keeps (infra/flowers_infra/stack.py, README "Nothing lost"):
- the dataset bucket is versioned and keeps the earlier versions of the data set's files for `lineage_retention_days`
  (a CDK context value, at least 365), so every version id a manifest names can be read back for a year at least;
- a run's manifest is written once (ObjectStore.write_once: S3 refuses the overwrite, and the artifact bucket's policy
  refuses a manifests/ write that does not ask for that) and locked (Object Lock, governance mode) as it is written;
- a model's files are locked when the model is registered (Orchestrator._register), the moment the registry points at
  them: SageMaker's own upload of the conversion's output cannot ask for a lock or a conditional write, and a
  conversion retried after a failure writes the same prefix again, so before registration they stay writable.

`plan` compares a manifest with the data set as it is now (pure); `restore` copies back, from the bucket's versions,
every file whose named version is no longer the current one (deleted, or replaced), so the data set again holds what
the run trained on. Files added since are left alone. A file the manifest names no version of (local mode keeps no
versions; a bucket without versioning gives none) cannot be restored, and is listed as such.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from chalicelib.pipeline import manifest
from chalicelib.pipeline.records import ObjectInfo
from chalicelib.ports import ObjectStore


@dataclass(frozen=True)
class RestorePlan:
    version: str  # the run's data set version (the manifest's)
    dataset_uri: str
    intact: int  # files whose current object is the one the manifest names
    to_restore: tuple[tuple[str, str], ...]  # (key, version id): gone or replaced since, and restorable
    unrecoverable: tuple[str, ...]  # gone or replaced, and the manifest names no version of them


def plan(record: dict[str, Any], current: Iterable[ObjectInfo]) -> RestorePlan:
    """What `restore` would do: `record` a parsed manifest (manifest.parse), `current` the data set's objects now (keys
    relative to its prefix, with their version ids where the store has them)."""
    now = {o.key: o for o in current}
    intact, to_restore, unrecoverable = 0, [], []
    for entry in record["files"]:
        key, version_id = entry["key"], str(entry.get("version_id") or "")
        found = now.get(key)
        # The same version, or the same bytes under a new one (an upload of an identical file; an earlier restore).
        if found is not None and ((version_id and found.version_id == version_id) or
                                  (found.etag.strip('"') == entry["etag"] and found.size == entry.get("size", found.size))):
            intact += 1
        elif version_id:
            to_restore.append((key, version_id))
        else:
            unrecoverable.append(key)
    return RestorePlan(str(record.get("version", "")), str(record["dataset_uri"]), intact, tuple(to_restore), tuple(unrecoverable))


def restore(objects: ObjectStore, record_uri: str, dry_run: bool = False) -> RestorePlan:
    """Read the manifest at `record_uri`, list its data set, and copy back each file `plan` finds restorable (none with
    `dry_run`). Safe to run again: a restored file is then intact (its bytes are the named version's)."""
    record = manifest.parse(objects.read(record_uri))
    dataset_uri = str(record.get("dataset_uri", ""))
    if not dataset_uri:
        raise manifest.ManifestError("the manifest names no data set")
    found = plan(record, objects.list(dataset_uri))
    if not dry_run:
        for key, version_id in found.to_restore:
            objects.restore_version(objects.join(dataset_uri, key), version_id)
    return found
