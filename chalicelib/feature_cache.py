"""The feature cache's place in the artifacts bucket, for the pipeline's job specifications (both modes).

training/feature_cache.py keeps phase 1's backbone features per photo there. In the cloud the job reads
s3://ARTIFACTS/features/ as its `features` input channel (only once the prefix holds entries: SageMaker
fails a job whose channel is empty, so the first upload also writes MARKER) and uploads its new entries
back; locally the job gets the folder HOME/artifacts/features/ itself.
"""
from __future__ import annotations

PREFIX = "features/"
CHANNEL = "features"  # SM_CHANNEL_FEATURES
MARKER = PREFIX + "README.txt"  # written with the first entries: the channel is given once it exists
FOLDER_ENV = "FLOWERS_FEATURE_CACHE"  # where the job reads and writes entries
URI_ENV = "FLOWERS_FEATURE_CACHE_URI"  # cloud: where the job uploads the entries it wrote
CHANNEL_PATH = "/opt/ml/input/data/" + CHANNEL
MARKER_TEXT = b"Phase 1 backbone features per photo, written by training jobs (training/feature_cache.py). Safe to delete.\n"
