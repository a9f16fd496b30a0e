"""Where things lie in the two buckets: the one definition of every prefix and artifact URI that the job
specs (chalicelib/pipeline/job_specs.py), the read model, local mode's job runner, training (the feature
cache) and infra's IAM policies and lifecycle rules name.

The artifact bucket (locally HOME/artifacts/):
  training/<job>/output/model.tar.gz    a training job's model: SageMaker's S3OutputPath is training/, it adds
  training/<job>/output/output.tar.gz   <job>/output/; output.tar.gz packs $SM_OUTPUT_DATA_DIR (validation.json).
                                        Locally: training/<job>/attempt-<n>/output/{model,data}/ and log.txt
  checkpoints/<job>/                    the job's checkpoints (a spot restart, a local rerun resumes)
  tensorboard/<job>/                    its TensorBoard events
  models/<version>/                     the converted model (model.tflite, labels.txt, metadata.json): the registry
                                        points here, the API links here. The model's version: its data set version's, but
                                        for a rerun of the version (chalicelib/pipeline/records.py model_version)
  manifests/<version>.json, .manifest   each data set version's photos (chalicelib/pipeline/manifest.py): every run of
                                        the version reads the same
  features/                             backbone features per photo (chalicelib/contract/feature_cache.py)
  conversion/<job>/                     local mode only: a conversion job's attempts, moved to models/<version>/
The dataset bucket, beside the data set's prefix (batch classification, chalicelib/pipeline/batch_classify.py;
never training data):
  classify/                             photos to classify
  predictions/<batch>.jsonl             their answers
"""
from __future__ import annotations

TRAINING_PREFIX = "training/"
CHECKPOINT_PREFIX = "checkpoints/"
TENSORBOARD_PREFIX = "tensorboard/"
MODELS_PREFIX = "models/"
MANIFESTS_PREFIX = "manifests/"
FEATURES_PREFIX = "features/"
LOCAL_CONVERSION_PREFIX = "conversion/"
CLASSIFY_PREFIX = "classify/"
PREDICTIONS_PREFIX = "predictions/"

MODEL_ARCHIVE = "model.tar.gz"  # the training job's model (SageMaker packs /opt/ml/model)
OUTPUT_ARCHIVE = "output.tar.gz"  # the training job's $SM_OUTPUT_DATA_DIR


def is_inside(relative: str) -> bool:
    """`relative` names an object inside a prefix when joined to it: no empty, `.` or `..` segment, no leading `/`,
    no backslash. S3 keeps `a/../b` as it is, a folder resolves it: checked before either reads it."""
    return bool(relative) and "\\" not in relative and all(part not in ("", ".", "..") for part in relative.split("/"))


def uri(bucket: str, key: str) -> str:
    """The object `key` of `bucket` (s3://; local mode's object store maps the bucket to a folder)."""
    return f"s3://{bucket}/{key}"


def training_output(artifact_bucket: str) -> str:
    """SageMaker's S3OutputPath for every training job: it writes <job>/output/ under it."""
    return uri(artifact_bucket, TRAINING_PREFIX)


def training_job_key(job: str, file: str) -> str:
    """The key of one of a training job's archives (`file`: MODEL_ARCHIVE or OUTPUT_ARCHIVE); infra's policies
    pass "*" for every job."""
    return f"{TRAINING_PREFIX}{job}/output/{file}"


def model_archive(artifact_bucket: str, job: str) -> str:
    return uri(artifact_bucket, training_job_key(job, MODEL_ARCHIVE))


def output_archive(artifact_bucket: str, job: str) -> str:
    return uri(artifact_bucket, training_job_key(job, OUTPUT_ARCHIVE))


def checkpoints(artifact_bucket: str, job: str) -> str:
    return uri(artifact_bucket, f"{CHECKPOINT_PREFIX}{job}/")


def tensorboard(artifact_bucket: str) -> str:
    """SageMaker's TensorBoard S3OutputPath (it adds <job>/; local jobs write there too)."""
    return uri(artifact_bucket, TENSORBOARD_PREFIX)


def model_folder(artifact_bucket: str, version: str) -> str:
    return uri(artifact_bucket, f"{MODELS_PREFIX}{version}/")


def manifest_record(artifact_bucket: str, version: str) -> str:
    return uri(artifact_bucket, f"{MANIFESTS_PREFIX}{version}.json")


def manifest_channel(artifact_bucket: str, version: str) -> str:
    return uri(artifact_bucket, f"{MANIFESTS_PREFIX}{version}.manifest")


def features(artifact_bucket: str) -> str:
    return uri(artifact_bucket, FEATURES_PREFIX)


def local_job(artifact_bucket: str, kind: str, job: str) -> str:
    """Local mode's folder of a job (`kind`: "training" or "conversion"), which holds its attempts."""
    return uri(artifact_bucket, f"{_LOCAL_JOB_PREFIXES[kind]}{job}/")


_LOCAL_JOB_PREFIXES = {"training": TRAINING_PREFIX, "conversion": LOCAL_CONVERSION_PREFIX}
