"""A run's manifest: exactly the files of the data set listing its version was computed from.

The tick lists the data set once (`Orchestrator._launch`), names the version after that listing,
and writes two files to the artifact bucket before it claims the run (their URIs:
chalicelib/contract/bucket_layout.py's manifest_record and manifest_channel):

- `manifests/<version>.json`, the record: every key (relative to the data set prefix) with its
  ETag, size and, in a versioned bucket, its S3 version id. Its URI and sha256 go to the jobs,
  into metadata.json and into the registry entry: a model names the exact photos it came from.
- `manifests/<version>.manifest`, SageMaker's ManifestFile format (`[{"prefix": ...}, key, ...]`):
  what the training channel and the conversion's data input read, so a photo uploaded after the
  listing is never trained on. Files land in the channel folder under their relative keys.

Local mode builds its job snapshot from the record (chalicelib/adapters/local/jobs.py). Both files hold
the listing sorted by key, so the same listing always gives the same bytes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

from chalicelib.pipeline.records import ObjectInfo

FORMAT = "flowers-manifest/1"
PAGE, MAX_PAGE = 1000, 5000  # files per page of GET /models/{version}/photos: default, most


class ManifestError(ValueError):
    """The bytes are not a manifest record this code wrote."""


@dataclass(frozen=True)
class Manifest:
    uri: str  # the record
    sha256: str  # of the record's bytes
    channel_uri: str  # SageMaker's ManifestFile of the same keys


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _sorted(objects: Iterable[ObjectInfo]) -> list[ObjectInfo]:
    return sorted(objects, key=lambda o: o.key)


def record(dataset_uri: str, version: str, objects: Iterable[ObjectInfo]) -> bytes:
    """The record's bytes: one line per file, so a diff of two manifests reads line by line."""
    listed = _sorted(objects)
    files = []
    for o in listed:
        entry: dict[str, Any] = {"key": o.key, "etag": o.etag.strip('"'), "size": o.size}
        if o.version_id and o.version_id != "null":  # "null": the object predates the bucket's versioning
            entry["version_id"] = o.version_id
        files.append(json.dumps(entry, sort_keys=True, separators=(",", ":")))
    head = json.dumps({"format": FORMAT, "version": version, "dataset_uri": dataset_uri, "count": len(listed),
                       "bytes": sum(o.size for o in listed)}, sort_keys=True, separators=(",", ":"))
    return (head[:-1] + ',"files":[\n' + ",\n".join(files) + "\n]}\n").encode()


def channel(dataset_uri: str, objects: Iterable[ObjectInfo]) -> bytes:
    """SageMaker's ManifestFile: the prefix, then each key relative to it."""
    prefix = dataset_uri if dataset_uri.endswith("/") else dataset_uri + "/"
    return (json.dumps([{"prefix": prefix}] + [o.key for o in _sorted(objects)], separators=(",", ":")) + "\n").encode()


def parse(raw: bytes) -> dict[str, Any]:
    """The record as a dict (format, version, dataset_uri, count, bytes, files); ManifestError when it is none."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ManifestError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT or not isinstance(document.get("files"), list):
        raise ManifestError(f"not a {FORMAT} record")
    for entry in document["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not isinstance(entry.get("etag"), str):
            raise ManifestError(f"bad file entry: {str(entry)[:200]}")
    return document


def recorded(metadata: dict[str, Any]) -> tuple[str, str]:
    """(URI, sha256) of the manifest the metadata.json the jobs wrote names; ("", "") when it names none."""
    found = metadata.get("manifest")
    if not isinstance(found, dict) or not found.get("uri"):
        return "", ""
    return str(found["uri"]), str(found.get("sha256", ""))
