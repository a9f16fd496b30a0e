"""The feature cache's place in the artifacts bucket, for the pipeline's job specifications (both modes).

training/feature_cache.py keeps phase 1's backbone features per photo there. In the cloud the job reads
s3://ARTIFACTS/features/ as its `features` input channel (only once the prefix holds entries: SageMaker
fails a job whose channel is empty, so whatever writes entries also writes MARKER) in FastFile mode, so a job
fetches only the entries it looks up (those of its own backbone), not every entry ever written.

New entries never leave a training job through the network (it runs network-isolated, with no AWS API
calls): the job writes them into its model folder, NEW_FOLDER/ (so they travel in model.tar.gz, its output
channel), and the conversion job, which reads that archive anyway, hands them on (training/convert.py
--features-out): SageMaker uploads its `features` output to s3://ARTIFACTS/features/; locally the job runner
moves them into HOME/artifacts/features/, as that upload does. A job that fails, or whose conversion does not
run, keeps none of its new entries: the next run computes them again. The job runner also expires old
entries there before each local training job (`expire`), as the cloud's lifecycle rule does.
"""
from __future__ import annotations

import os
from pathlib import Path

from chalicelib.contract.bucket_layout import FEATURES_PREFIX

PREFIX = FEATURES_PREFIX  # in the artifact bucket (chalicelib/contract/bucket_layout.py)
MARKER = PREFIX + "README.txt"  # written with the first entries: the channel is given once it exists
FOLDER_ENV = "FLOWERS_FEATURE_CACHE"  # where the job reads entries (and writes them, without NEW_ENV)
NEW_ENV = "FLOWERS_FEATURE_CACHE_NEW"  # where the job writes its new entries: its model folder's NEW_FOLDER
NEW_FOLDER = "features"  # in the training job's model folder (model.tar.gz), and the conversion's output
ENTRY_SUFFIX = ".f32"  # an entry is <first 2 hex digits of its key>/<key: 64 hex digits>.f32
# Entries of a backbone nobody starts from any more are never read again; a month bounds what the prefix
# holds (infra's lifecycle rule). An entry still in use that expires costs one recompute.
EXPIRE_DAYS = 30
MARKER_TEXT = b"Backbone features per photo, written by training jobs (training/feature_cache.py). Safe to delete.\n"


def expire(folder: Path, days: int, now: float) -> int:
    """The lifecycle rule's local counterpart (HOME/artifacts/features/): entries written more than `days`
    ago, and part files a crash left, are deleted, as S3 expires them in the cloud. Returns how many."""
    cutoff = now - days * 86_400
    removed = 0
    for entry in folder.glob("*/*") if folder.is_dir() else ():
        try:
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()
                removed += 1
        except OSError:  # gone already (another job), or not ours to delete: the next run tries again
            continue
    return removed


def move_into(source: Path, folder: Path) -> int:
    """Local mode's counterpart of SageMaker's upload of the conversion job's `features` output: every file under
    `source` moved into `folder` at the same relative path (one rename each, so an entry appears whole). Returns
    how many."""
    moved = 0
    for entry in sorted(source.rglob("*")) if source.is_dir() else ():
        if not entry.is_file():
            continue
        destination = folder / entry.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(entry, destination)
        moved += 1
    return moved
