"""Fixtures for the pipeline, API and prediction tests.

`aws` gives a moto account with the buckets, the state table and the settings a deployed
stack would have. The event builders produce the documented shapes: S3 event notifications
inside SQS records, and SageMaker job state changes from EventBridge, from local mode's own
builders with this account's region and id; `output_archive` is a training job's output.tar.gz.
`tiny_model` trains and converts a real tiny model once per test session (shared between
xdist workers through a lock), with `python -m training.train` and `training.convert`.
"""
from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from chalicelib.adapters.local import events
from data_fixtures import PHOTOS, ROOT, require_photos

REGION = "us-east-1"
ACCOUNT = "123456789012"
ENV = {
    "FLOWERS_MODE": "aws",
    "DATASET_BUCKET": "flowers-data",
    "DATASET_PREFIX": "datasets/flowers/",
    "ARTIFACT_BUCKET": "flowers-artifacts",
    "STATE_TABLE": "flowers-state",
    "MODEL_PACKAGE_GROUP": "flowers",
    "TRAINING_IMAGE_URI": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/flowers-training:latest",
    "SAGEMAKER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/flowers-sagemaker",
    "CONVERSION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/flowers-conversion",
    "QUIET_PERIOD": "600",
    "MIN_NEW_IMAGES": "1",
    "MODEL_REFRESH_SECONDS": "60",
    "POWERTOOLS_SERVICE_NAME": "flowers",
    "POWERTOOLS_METRICS_NAMESPACE": "Flowers",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass
class AwsWorld:
    s3: object
    sagemaker: object
    dynamodb: object
    env: dict

    @property
    def dataset_bucket(self) -> str:
        return self.env["DATASET_BUCKET"]

    @property
    def prefix(self) -> str:
        return self.env["DATASET_PREFIX"]

    @property
    def artifacts(self) -> str:
        return self.env["ARTIFACT_BUCKET"]


def _one_backup_per_transaction(monkeypatch) -> None:
    """moto deep-copies a table once per *item* of a TransactWriteItems (its rollback backup),
    which makes 3,000 upload events quadratic (minutes). Copy each table once per call: the
    same backup (every copy is taken before any write), in linear time."""
    import copy as real_copy

    from moto.dynamodb import models

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        cache: dict[int, object] = {}

        class OncePerCall:
            @staticmethod
            def deepcopy(obj, memo=None):
                if id(obj) not in cache:
                    cache[id(obj)] = real_copy.deepcopy(obj, memo)
                return cache[id(obj)]

        models.copy = OncePerCall
        try:
            return original(self, transact_items)
        finally:
            models.copy = real_copy

    monkeypatch.setattr(models.DynamoDBBackend, "transact_write_items", transact_write_items)


@pytest.fixture
def aws(monkeypatch):
    """A moto account laid out like the deployed stack; chalicelib's caches are reset around it."""
    with aws_account(monkeypatch) as world:
        yield world


@contextlib.contextmanager
def aws_account(monkeypatch, env: dict | None = None):
    """The `aws` fixture's account, for a test that needs several in turn (`env`: settings over ENV)."""
    import boto3
    from moto import mock_aws

    from chalicelib import services
    from chalicelib.adapters.aws.dynamodb_state import create_table

    env = {**ENV, **(env or {})}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    _one_backup_per_transaction(monkeypatch)
    services.reset()
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=env["DATASET_BUCKET"])
            s3.create_bucket(Bucket=env["ARTIFACT_BUCKET"])
            dynamodb = boto3.client("dynamodb", region_name=REGION)
            create_table(dynamodb, env["STATE_TABLE"])
            sagemaker = boto3.client("sagemaker", region_name=REGION)
            yield AwsWorld(s3, sagemaker, dynamodb, env)
    finally:
        services.reset()


# events: the builders local mode uses (chalicelib/adapters/local/events.py), from this test account ---------
@pytest.fixture
def created(monkeypatch) -> dict[str, dict]:
    """CreateTrainingJob requests as sent, by job name, in order (moto keeps no Environment)."""
    from botocore.client import BaseClient

    requests: dict[str, dict] = {}
    real_call = BaseClient._make_api_call

    def recording(client, operation, params):
        if operation == "CreateTrainingJob":
            requests[params["TrainingJobName"]] = params
        return real_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return requests


def s3_record(bucket: str, key: str, at: float, kind: str = "created", etag: str = "0123456789abcdef0123456789abcdef",
              sequencer: str = "") -> dict:
    return events.s3_record(bucket, key, kind, etag, 1024, sequencer, at, region=REGION)


s3_body = events.s3_notification


def s3_test_event_body(bucket: str) -> str:
    return events.s3_test_event(bucket)


def sqs_event(bodies: list[str]) -> dict:
    return events.sqs_event(bodies, region=REGION, account=ACCOUNT)


def training_state_event(job: str, status: str, reason: str = "") -> dict:
    """As SageMaker sends it: the model archive where a training job of that name writes it."""
    model = f"s3://{ENV['ARTIFACT_BUCKET']}/training/{job}/output/model.tar.gz"
    return events.training_state(job, status, model, reason, 1700000000.0, region=REGION, account=ACCOUNT)


def processing_state_event(job: str, status: str, reason: str = "") -> dict:
    return events.processing_state(job, status, reason, 1700000000.0, region=REGION, account=ACCOUNT)


def principal(name: str) -> str:
    """An IAM principal's ARN as API Gateway's IAM authorizer puts it in the request context (an assumed role's session)."""
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/FlowersOperators/{name}"


def invoke_api(app, method: str, path: str, headers: dict[str, str], body: bytes = b"", identity: dict | None = None) -> dict:
    """Call the app as Lambda does behind API Gateway: the event Chalice's own gateway builds, with `identity` laid over
    its request context's (API Gateway's IAM authorizer adds userArn, caller, accountId for a SigV4-signed request;
    Chalice's test client cannot, its gateway knows no IAM). The Lambda proxy response."""
    from chalice.local import LambdaContext, LambdaEventConverter, RouteMatcher

    event = LambdaEventConverter(RouteMatcher(list(app.routes)), app.api.binary_types).create_lambda_event(method, path, headers, body)
    event["requestContext"]["identity"].update(identity or {})
    return app(event, LambdaContext("api", 512))


def iam_identity(user_arn: str) -> dict:
    return {"userArn": user_arn, "caller": "AROAEXAMPLE:" + user_arn.rsplit("/", 1)[-1], "accountId": ACCOUNT, "user": "AROAEXAMPLE"}


def signed_request(app, method: str, path: str, body: bytes = b"", user_arn: str = "", user_agent: str = "") -> tuple[int, dict]:
    """An operator request signed by `user_arn` as the Lambda receives it: (status, JSON body)."""
    headers = {"Content-Type": "application/json", **({"User-Agent": user_agent} if user_agent else {})}
    response = invoke_api(app, method, path, headers, body, iam_identity(user_arn) if user_arn else None)
    return response["statusCode"], json.loads(response["body"])


# a real tiny model -------------------------------------------------------------------------
TINY_CLASSES = ("daisy", "roses", "sunflowers")
TINY_PER_CLASS = 10


def sample_photos(count: int = 3) -> list[Path]:
    """A few real photos (the shared data set), for requests and benchmarks."""
    found = []
    for label in TINY_CLASSES:
        found += sorted((PHOTOS / label).glob("*.jpg"))[TINY_PER_CLASS : TINY_PER_CLASS + count]
    return found[:count]


def build_tiny_model(work: Path) -> Path:
    """Train (tiny_cnn, 32 px) and convert (fp32) a real model; return the converted folder."""
    data = work / "data"
    for label in TINY_CLASSES:
        (data / label).mkdir(parents=True, exist_ok=True)
        for photo in sorted((PHOTOS / label).glob("*.jpg"))[:TINY_PER_CLASS]:
            shutil.copyfile(photo, data / label / photo.name)
    config = work / "config"
    config.mkdir(exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(
        {"preset": "tiny_cnn", "image_size": "32", "epochs": "1", "head_epochs": "2", "batch_size": "8", "min_images_per_class": "2"}))
    env = dict(os.environ, SM_INPUT_CONFIG_DIR=str(config), SM_CHANNEL_TRAINING=str(data), SM_MODEL_DIR=str(work / "model"),
               SM_OUTPUT_DIR=str(work / "output"), SM_CHECKPOINT_DIR=str(work / "checkpoints"),
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))
    for command in ([sys.executable, "-m", "training.train"],
                    [sys.executable, "-m", "training.convert", str(work / "model"), str(work / "converted"),
                     "--data", str(data), "--quantize", "fp32"]):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[2:4])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return work / "converted"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    require_photos()
    import hashlib

    # Shared by xdist workers; keyed by the training code so a change to it rebuilds the model.
    sources = sorted((ROOT / "training").glob("*.py")) + [ROOT / "chalicelib" / "contract" / "imaging.py", Path(__file__)]
    key = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    shared = tmp_path_factory.getbasetemp().parent / f"flowers-tiny-model-{key}"
    shared.mkdir(parents=True, exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "converted" / "metadata.json"
        if not done.exists():
            build_tiny_model(shared)
    return shared / "converted"


def output_archive(report: dict) -> bytes:
    """SageMaker's output.tar.gz: $SM_OUTPUT_DATA_DIR's files at the archive's root."""
    payload = json.dumps(report).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("validation.json")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()
