"""The feature cache's place in the artifacts bucket, for the pipeline's job specifications (both modes).

training/feature_cache.py keeps phase 1's backbone features per photo there. In the cloud the job reads
s3://ARTIFACTS/features/ as its `features` input channel (only once the prefix holds entries: SageMaker
fails a job whose channel is empty, so the first upload also writes MARKER) in FastFile mode, so a job
fetches only the entries it looks up (those of its own backbone), not every entry ever written; it writes
its new entries to NEW_PATH and uploads them back. Locally the job gets the folder HOME/artifacts/features/
itself, and the job runner expires old entries there before each training job (`expire`).
"""
from __future__ import annotations

from pathlib import Path

from chalicelib.contract.bucket_layout import FEATURES_PREFIX

PREFIX = FEATURES_PREFIX  # in the artifact bucket (chalicelib/contract/bucket_layout.py)
MARKER = PREFIX + "README.txt"  # written with the first entries: the channel is given once it exists
FOLDER_ENV = "FLOWERS_FEATURE_CACHE"  # where the job reads entries (and writes them, without NEW_ENV)
NEW_ENV = "FLOWERS_FEATURE_CACHE_NEW"  # cloud: where the job writes its new entries (the channel is read-only)
URI_ENV = "FLOWERS_FEATURE_CACHE_URI"  # cloud: where the job uploads the entries it wrote
NEW_PATH = "/tmp/flowers-features-new"
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
