"""The AWS stack (infra/), asserted on its synthesized CloudFormation template.

Synthesis runs once per test session, offline, without AWS credentials: the CDK app imports
app.py and runs `chalice package` (Lambda wheels come from .chalice/deployments/ or PyPI).
With pytest-xdist the first worker synthesizes and the others read its template. A second
stack, under another name, is synthesized for the test that both fit one account and region.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO / "infra"))

import flowers_infra  # noqa: E402,F401  (quiets jsii's Node.js banner before aws_cdk loads)
from aws_cdk.assertions import Match, Template  # noqa: E402

from chalicelib import settings as app_settings  # noqa: E402
from flowers_infra.config import FlowersConfig  # noqa: E402

STACK = "flowers"
SECOND_STACK = "flowers-dev"
# Settings the second stack sets, so that a test can see them reach its template (tests/infra/test_infra_clients.py).
SECOND_STACK_CONTEXT = {"waf_rate_per_5min": "300", "api_reserved_concurrency": "0"}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream"}
FUNCTIONS = {"APIHandler", "OnUpload", "Tick", "OnSagemakerJob"}


def _synthesized(tmp_path_factory, worker_id, stack: str) -> Path:
    """The cloud assembly of `stack`, synthesized once per test run (`-c stack_name=<stack>`)."""
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # under xdist: this run's folder, shared by workers
    out = shared / f"infra-cdk.out-{stack}"
    with open(shared / f"infra-synth-{stack}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / f"{stack}.template.json").exists():
            saved = {k: os.environ.pop(k) for k in list(os.environ)
                     if k.startswith(("AWS_ACCESS_KEY", "AWS_SECRET", "AWS_SESSION", "AWS_PROFILE", "CDK_DEFAULT"))}
            try:
                from flowers_infra.build import build

                before = dict(os.environ)
                # The second stack is a throwaway one (retain_data=false): what it keeps all the same is asserted too.
                app, _stack = build(outdir=str(out), context=None if stack == STACK else {"stack_name": stack, "retain_data": "false", **SECOND_STACK_CONTEXT})
                app.synth()
                # Synthesis runs in this test process: what it set (the Lambdas' settings, through chalice's
                # package step) must not reach the tests that run after it in the same worker.
                assert dict(os.environ) == before, sorted(set(os.environ.items()) ^ set(before.items()))
            finally:
                os.environ.update(saved)
    return out


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory, worker_id) -> Path:
    return _synthesized(tmp_path_factory, worker_id, STACK)  # the default stack: no stack_name given


@pytest.fixture(scope="session")
def raw(cdk_out) -> dict:
    return json.loads((cdk_out / f"{STACK}.template.json").read_text())


@pytest.fixture(scope="session")
def second_raw(tmp_path_factory, worker_id) -> dict:
    out = _synthesized(tmp_path_factory, worker_id, SECOND_STACK)
    return json.loads((out / f"{SECOND_STACK}.template.json").read_text())


@pytest.fixture(scope="session")
def template(raw) -> Template:
    return Template.from_json(raw)


def resources(raw: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in raw["Resources"].items() if v["Type"] == kind}


def one(raw: dict, kind: str, logical_prefix: str) -> tuple[str, dict]:
    found = [(k, v) for k, v in resources(raw, kind).items() if k.startswith(logical_prefix)]
    assert len(found) == 1, f"expected one {kind} {logical_prefix}*, found {[k for k, _ in found]}"
    return found[0]


def statements(raw: dict, role_id: str) -> list[dict]:
    """Every statement attached to a role, inline or through AWS::IAM::Policy."""
    role = raw["Resources"][role_id]["Properties"]
    found = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for policy in resources(raw, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def actions_of(found: list[dict]) -> set[str]:
    return {a for s in found if s["Effect"] == "Allow" for a in as_list(s["Action"])}


def text(value) -> str:
    return json.dumps(value)


# storage ------------------------------------------------------------------------------------------
def test_buckets_are_encrypted_versioned_private_and_logged(raw, template):
    buckets = resources(raw, "AWS::S3::Bucket")
    assert len(buckets) == 3  # data sets, artifacts, access logs
    logs_id, _ = one(raw, "AWS::S3::Bucket", "AccessLogs")
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "AES256"}, logical_id
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any(r.get("NoncurrentVersionExpiration") for r in rules), logical_id
        assert any(r.get("AbortIncompleteMultipartUpload") for r in rules), logical_id
        if logical_id != logs_id:
            assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}
    template.has_resource_properties("AWS::S3::Bucket", {
        "BucketName": {"Fn::Join": ["", [f"{STACK}-datasets-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]}})


def test_every_bucket_policy_denies_plain_http(raw):
    buckets = set(resources(raw, "AWS::S3::Bucket"))
    covered = set()
    for policy in resources(raw, "AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition", {}).get("Bool", {}).get(
                    "aws:SecureTransport") == "false":
                assert statement["Principal"] == {"AWS": "*"} and statement["Action"] == "s3:*"
                assert len(statement["Resource"]) == 2  # the bucket and its objects
                covered.add(policy["Properties"]["Bucket"]["Ref"])
            if statement["Effect"] == "Allow":
                assert statement["Principal"] != {"AWS": "*"} and statement["Principal"] != "*"
    assert covered == buckets


def test_artifact_lifecycle_expires_job_outputs_but_keeps_models(raw):
    _, bucket = one(raw, "AWS::S3::Bucket", "ArtifactBucket")
    rules = {r.get("Prefix"): r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    for prefix in ("training/", "checkpoints/", "tensorboard/"):
        assert rules[prefix]["ExpirationInDays"] > 0 and rules[prefix]["Status"] == "Enabled"
    # the feature cache: entries of backbones no run starts from any more are never read again
    assert rules["features/"]["ExpirationInDays"] == 30 and rules["features/"]["Status"] == "Enabled"
    # models/ and manifests/ never expire; their earlier versions are kept (tests/infra/test_infra_retention.py)
    assert not any(rules[prefix].get("ExpirationInDays") for prefix in ("models/", "manifests/"))
    assert not any(r.get("ExpirationInDays") and not r.get("Prefix") for r in rules.values())


# uploads ---------------------------------------------------------------------------------------------
def test_dataset_events_go_to_the_uploads_queue(raw):
    bucket_id, bucket = one(raw, "AWS::S3::Bucket", "DatasetBucket")
    queue_id, queue = one(raw, "AWS::SQS::Queue", "Uploads4")
    configs = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert {c["Event"] for c in configs} == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    for config in configs:
        assert config["Queue"] == {"Fn::GetAtt": [queue_id, "Arn"]}
        # the data set's prefix, and classify/ (created only: batch classification, tests/infra/test_infra_events.py)
        assert config["Filter"]["S3Key"]["Rules"] in ([{"Name": "prefix", "Value": "datasets/flowers/"}],
                                                      [{"Name": "prefix", "Value": "classify/"}])
    policy_id, _ = one(raw, "AWS::SQS::QueuePolicy", "UploadsPolicy")
    assert policy_id in bucket["DependsOn"]  # S3 validates the destination when it saves the notification


def test_uploads_queue_has_dead_letters_encryption_and_accepts_only_the_dataset_bucket(raw):
    queue_id, queue = one(raw, "AWS::SQS::Queue", "Uploads4")
    dlq_id, dlq = one(raw, "AWS::SQS::Queue", "UploadsDeadLetters")
    props = queue["Properties"]
    assert props["QueueName"] == f"{STACK}-uploads"  # the default stack's: app.py's decorator and local mode say so too
    assert props["SqsManagedSseEnabled"] is True and dlq["Properties"]["SqsManagedSseEnabled"] is True
    assert props["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 5}
    assert props["VisibilityTimeout"] >= 6 * 60
    _, policy = one(raw, "AWS::SQS::QueuePolicy", "UploadsPolicy")
    allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    allow = allows[0]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    source = text(allow["Condition"]["ArnEquals"]["aws:SourceArn"])
    assert f"s3:::{STACK}-datasets-" in source
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


# state and registry ------------------------------------------------------------------------------
def test_state_table(template):
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": Match.array_with([{"AttributeName": "pk", "AttributeType": "S"},
                                                  {"AttributeName": "sk", "AttributeType": "S"}]),
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
        "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
    })
    template.has_resource("AWS::DynamoDB::Table", {"DeletionPolicy": "Retain"})


def test_model_package_group(template):
    template.has_resource_properties("AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "flowers"})


# training image and SageMaker role ------------------------------------------------------------------
def test_training_image_asset_is_built_from_the_repo_with_only_what_the_dockerfile_copies(cdk_out):
    assets = json.loads((cdk_out / f"{STACK}.assets.json").read_text())
    images = list(assets["dockerImages"].values())
    assert len(images) == 1
    source = images[0]["source"]
    assert source["dockerFile"] == "training/Dockerfile" and source["platform"] == "linux/amd64"
    context = cdk_out / source["directory"]
    assert sorted(p.name for p in context.iterdir()) == ["chalicelib", "requirements-pip.txt", "training"]
    assert (context / "training" / "Dockerfile").is_file()
    assert not list(context.rglob("__pycache__"))


def _role_id(raw: dict, prefix: str) -> str:
    return one(raw, "AWS::IAM::Role", prefix)[0]


def _rendered(value) -> str:
    """A policy's Resource as the ARN it becomes, for matching keys against it: the buckets' logical ids stand for
    their names, the pseudo parameters for one account and region."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_rendered(p) for p in parts)
    if "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn" and "Bucket" in value["Fn::GetAtt"][0]:
        return f"arn:aws:s3:::{value['Fn::GetAtt'][0]}"
    if "Ref" in value:
        return {"AWS::Partition": "aws", "AWS::AccountId": "123456789012", "AWS::Region": "us-east-1",
                "AWS::URLSuffix": "amazonaws.com"}.get(value["Ref"], value["Ref"])
    raise AssertionError(f"cannot render {value}")


def _allows(found: list[dict], action: str, arn: str) -> bool:
    """Whether an Allow statement without conditions grants `action` on `arn` (IAM's * and ? wildcards)."""
    import fnmatch

    return any(s["Effect"] == "Allow" and action in as_list(s["Action"]) and "Condition" not in s
               and any(fnmatch.fnmatchcase(arn, _rendered(r)) for r in as_list(s["Resource"])) for s in found)


def _artifact(raw: dict, key: str) -> str:
    return f"arn:aws:s3:::{one(raw, 'AWS::S3::Bucket', 'ArtifactBucket')[0]}/{key}"


KEY = "0123456789abcdef" * 4  # a feature cache entry's key (64 hex digits)
JOB, VERSION = "flowers-0123456789abcdef", "0123456789abcdef"
MODEL_FILES = [f"models/{VERSION}/{name}" for name in ("model.tflite", "labels.txt", "metadata.json")]
FEATURE_FILES = [f"features/01/{KEY}.f32", "features/README.txt"]
TRAINING_OUTPUTS = [f"training/{JOB}/output/model.tar.gz", f"training/{JOB}/output/output.tar.gz",
                    f"checkpoints/{JOB}/ckpt-1.weights.h5", f"tensorboard/{JOB}/events.out.tfevents.1"]


def _job_role(raw: dict, prefix: str, log_group: str) -> list[dict]:
    """The statements of a job's role, and what both roles share: trusted by SageMaker only, the data set's prefix
    read, the image pulled, its own log group, metrics in SageMaker's namespaces; nothing written to the data set."""
    role_id = _role_id(raw, prefix)
    trust = raw["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "sagemaker.amazonaws.com"}]
    found = statements(raw, role_id)
    by_sid = {s.get("Sid"): s for s in found}
    assert text(by_sid["ReadDataset"]["Resource"]).endswith('/datasets/flowers/*"]]}')
    assert by_sid["JobMetrics"]["Condition"] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}
    assert f"{log_group}:*" in text(by_sid["JobLogs"]["Resource"])
    for statement in found:
        if statement["Resource"] == "*":
            assert as_list(statement["Action"]) in (["ecr:GetAuthorizationToken"], ["cloudwatch:PutMetricData"])
        for resource in as_list(statement["Resource"]):
            if "s3:PutObject" in as_list(statement["Action"]):
                assert "ArtifactBucket" in text(resource), statement  # never the data set
    return found


def test_the_training_role_reads_its_inputs_and_writes_training_outputs_only(raw):
    found = _job_role(raw, "SageMakerExecutionRole", "/aws/sagemaker/TrainingJobs")
    assert actions_of(found) == {
        "s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject",
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
        "cloudwatch:PutMetricData",
        "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
    }
    for key in TRAINING_OUTPUTS:
        assert _allows(found, "s3:PutObject", _artifact(raw, key)), key
    # its inputs: a warm start's model.tar.gz, the manifest, the feature cache, its checkpoints after a restart
    for key in (f"training/{JOB}/output/model.tar.gz", f"manifests/{VERSION}.manifest", f"features/01/{KEY}.f32",
                f"checkpoints/{JOB}/ckpt-1.weights.h5"):
        assert _allows(found, "s3:GetObject", _artifact(raw, key)), key
    # never models/ (conversion's), features/ (its new entries leave in model.tar.gz) nor manifests/ (the pipeline's)
    for key in [*MODEL_FILES, *FEATURE_FILES, f"manifests/{VERSION}.json"]:
        assert not _allows(found, "s3:PutObject", _artifact(raw, key)), key
    assert not _allows(found, "s3:GetObject", _artifact(raw, MODEL_FILES[0]))  # nor reads the served models
    deletes = [s for s in found if "s3:DeleteObject" in as_list(s["Action"])]
    assert [text(s["Resource"]).count("/checkpoints/*") for s in deletes] == [1]  # the checkpoint sync's rotation only


def test_the_conversion_role_writes_model_files_and_feature_cache_entries_only(raw):
    """It may write its version's model files (the job's output URI names the version; a static role cannot, so
    any version's, which models/ being write-once covers) and feature cache entries, never training outputs,
    manifests or other files, and deletes nothing."""
    found = _job_role(raw, "ConversionJobRole", "/aws/sagemaker/ProcessingJobs")
    assert actions_of(found) == {
        "s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:AbortMultipartUpload",
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
        "cloudwatch:PutMetricData",
        "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
    }
    for key in [*MODEL_FILES, *FEATURE_FILES]:
        assert _allows(found, "s3:PutObject", _artifact(raw, key)), key
    for key in [*TRAINING_OUTPUTS, f"manifests/{VERSION}.json", f"manifests/{VERSION}.manifest",
                f"models/{VERSION}/anything-else.bin", f"models/{VERSION}", "features/01/evil.sh", "features/other.txt"]:
        assert not _allows(found, "s3:PutObject", _artifact(raw, key)), key
    # its inputs: the training job's model.tar.gz, the baseline's folder, the run's manifest; not the cache
    for key in (f"training/{JOB}/output/model.tar.gz", MODEL_FILES[0], f"manifests/{VERSION}.manifest"):
        assert _allows(found, "s3:GetObject", _artifact(raw, key)), key
    for key in (f"features/01/{KEY}.f32", f"checkpoints/{JOB}/ckpt-1.weights.h5", f"training/{JOB}/output/output.tar.gz"):
        assert not _allows(found, "s3:GetObject", _artifact(raw, key)), key


def test_the_pipeline_starts_only_network_isolated_jobs(raw):
    """chalicelib/adapters/aws/sagemaker_jobs.py asks for isolation; IAM refuses a request that does not."""
    pipeline = next(f for name, f in functions(raw).items() if name == "Tick")["Properties"]["Role"]["Fn::GetAtt"][0]
    by_sid = {s.get("Sid"): s for s in statements(raw, pipeline)}
    for sid, action in (("StartTraining", "sagemaker:CreateTrainingJob"), ("StartConversion", "sagemaker:CreateProcessingJob")):
        assert as_list(by_sid[sid]["Action"]) == [action]
        assert by_sid[sid]["Condition"]["Bool"] == {"sagemaker:NetworkIsolation": "true"}, sid


# IAM everywhere ---------------------------------------------------------------------------------------
def _all_statements(raw: dict) -> list[tuple[str, dict]]:
    found = []
    for logical_id, resource in raw["Resources"].items():
        props = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        if "PolicyDocument" in props:
            documents.append(props["PolicyDocument"])
        for document in documents:
            found += [(logical_id, s) for s in document["Statement"]]
    return found


def test_no_statement_allows_every_action_and_no_allow_uses_a_service_wildcard_on_everything(raw):
    found = _all_statements(raw)
    assert len(found) > 30
    for logical_id, statement in found:
        actions = as_list(statement.get("Action", []))
        if statement["Effect"] != "Allow":
            continue
        assert "*" not in actions, logical_id
        if statement.get("Resource") == "*" or statement.get("Resource") == ["*"]:
            assert not any(a.endswith(":*") for a in actions), (logical_id, actions)


def test_pass_role_only_for_the_two_job_roles_to_sagemaker(raw):
    """The pipeline passes both job roles (it starts training and conversion), the API only the training role (POST
    /runs starts a training job); nothing else passes a role, and only to SageMaker."""
    training, conversion = ({"Fn::GetAtt": [_role_id(raw, prefix), "Arn"]} for prefix in ("SageMakerExecutionRole", "ConversionJobRole"))
    passes = [(lid, s) for lid, s in _all_statements(raw) if "iam:PassRole" in as_list(s.get("Action", []))]
    passed: dict[str, list] = {}
    for lid, statement in passes:
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
        passed.setdefault(lid, []).extend(as_list(statement["Resource"]))
    role_of = {name: f["Properties"]["Role"]["Fn::GetAtt"][0] for name, f in functions(raw).items()}
    assert sorted(passed) == sorted({role_of["Tick"], role_of["APIHandler"]}), sorted(passed)
    assert sorted(passed[role_of["Tick"]], key=text) == sorted([training, conversion], key=text)
    assert passed[role_of["APIHandler"]] == [training]


# the Chalice app -----------------------------------------------------------------------------------------
def functions(raw: dict) -> dict[str, dict]:
    return resources(raw, "AWS::Serverless::Function")


def test_the_app_is_included_with_its_event_sources(raw):
    found = functions(raw)
    assert set(found) == FUNCTIONS
    assert raw.get("Transform") in ("AWS::Serverless-2016-10-31", ["AWS::Serverless-2016-10-31"])
    events = {name: list(f["Properties"].get("Events", {}).values()) for name, f in found.items()}
    (sqs_event,) = events["OnUpload"]
    queue_id, _ = one(raw, "AWS::SQS::Queue", "Uploads4")
    # By reference, not by the name in app.py's decorator: CloudFormation creates the queue first.
    assert sqs_event["Type"] == "SQS" and sqs_event["Properties"]["Queue"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert sqs_event["Properties"]["BatchSize"] == 100  # the rest of the event source is app.py's
    # Set here, not by Chalice: only the messages the function names in batchItemFailures go back to the queue.
    assert sqs_event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (schedule,) = events["Tick"]
    assert schedule == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}
    (rule,) = events["OnSagemakerJob"]
    assert rule["Type"] == "CloudWatchEvent"
    assert rule["Properties"]["Pattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Training Job State Change", "SageMaker Processing Job State Change"]}
    for name, function in found.items():
        assert function["Properties"]["Runtime"] == "python3.11"
        assert function["Properties"]["CodeUri"]["Bucket"] == {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}


def test_every_function_gets_every_setting_the_app_reads(raw):
    needed = set(app_settings.variables().values())
    expected = FlowersConfig().lambda_environment()
    for name, function in functions(raw).items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert needed <= set(variables), (name, needed - set(variables))
        for key, value in expected.items():
            assert variables[key] == value, (name, key)
        assert variables["FLOWERS_MODE"] == "aws"
        assert variables["DATASET_BUCKET"]["Ref"].startswith("DatasetBucket")
        assert variables["ARTIFACT_BUCKET"]["Ref"].startswith("ArtifactBucket")
        assert variables["STATE_TABLE"]["Ref"].startswith("StateTable")
        assert variables["SAGEMAKER_ROLE_ARN"]["Fn::GetAtt"][0].startswith("SageMakerExecutionRole")
        assert variables["CONVERSION_ROLE_ARN"]["Fn::GetAtt"][0].startswith("ConversionJobRole")
        assert "container-assets" in text(variables["TRAINING_IMAGE_URI"])


def test_the_settings_the_stack_sets_are_valid_for_the_app():
    """Literal values only (resource names are tokens): chalicelib/settings.py must accept them."""
    env = dict(FlowersConfig().lambda_environment(), DATASET_BUCKET="flowers-datasets-123456789012-us-east-1",
               ARTIFACT_BUCKET="flowers-artifactbucket-abc", STATE_TABLE="flowers-StateTable-X",
               TRAINING_IMAGE_URI="123456789012.dkr.ecr.us-east-1.amazonaws.com/repo:tag",
               SAGEMAKER_ROLE_ARN="arn:aws:iam::123456789012:role/flowers-SageMakerExecutionRole",
               CONVERSION_ROLE_ARN="arn:aws:iam::123456789012:role/flowers-ConversionJobRole")
    settings = app_settings.from_environ(env)
    assert settings.mode == "aws" and settings.dataset_prefix == "datasets/flowers/"
    assert settings.training_instance_type == "ml.g5.xlarge" and settings.preset == "efficientnet_lite1"


def test_each_function_has_its_own_least_privilege_role(raw):
    found = functions(raw)
    role_of = {name: f["Properties"]["Role"]["Fn::GetAtt"][0] for name, f in found.items()}
    assert role_of["Tick"] == role_of["OnSagemakerJob"]  # both run the pipeline
    assert len({role_of["APIHandler"], role_of["OnUpload"], role_of["Tick"]}) == 3
    api = actions_of(statements(raw, role_of["APIHandler"]))
    upload = actions_of(statements(raw, role_of["OnUpload"]))
    pipeline = actions_of(statements(raw, role_of["Tick"]))
    # Which of these each code path needs, call by call: tests/infra/test_roles_enforced.py.
    assert upload == {"dynamodb:PutItem", "dynamodb:UpdateItem",
                      "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility",
                      "logs:CreateLogStream", "logs:PutLogEvents",
                      # batch classification: classify/ read, predictions/ written, the served model read
                      "s3:GetObject", "s3:PutObject", "s3:ListBucket", "sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"}
    launch = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "s3:ListBucket", "s3:ListBucketVersions",
              "s3:GetObject", "s3:PutObject", "s3:PutObjectRetention", "sagemaker:CreateTrainingJob",
              "sagemaker:DescribeTrainingJob", "sagemaker:DescribeProcessingJob", "sagemaker:AddTags",
              "iam:PassRole"}  # a run started (tick, POST /runs); UpdateItem also records who approved, rejected, rolled back
    assert api == launch | {"sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages",
                            "sagemaker:UpdateModelPackage", "events:PutEvents",  # PutEvents: the operator actions' events
                            "logs:CreateLogStream", "logs:PutLogEvents"}
    assert launch | {"sagemaker:CreateProcessingJob", "sagemaker:CreateModelPackage"} <= pipeline
    assert not any(a.startswith("s3:Delete") for a in api | upload | pipeline)
    # The one S3 write of the pipeline and of the API: a run's launch writes its manifest, and nothing else (it also locks
    # manifests, and the pipeline models: s3:PutObjectRetention, tests/infra/test_infra_retention.py).
    for function in ("Tick", "APIHandler"):
        writes = [st for st in statements(raw, role_of[function]) if "s3:PutObject" in as_list(st["Action"])]
        assert len(writes) == 1 and not isinstance(writes[0]["Resource"], list) and '/manifests/*"' in text(writes[0]["Resource"]), writes
    assert "s3:ListBucketVersions" in pipeline  # the manifest records each photo's version id
    assert not any(a.startswith("iam:") for a in upload)  # PassRole: test_pass_role_only_for_the_two_job_roles_to_sagemaker
    for name, role in role_of.items():
        for statement in statements(raw, role):
            if statement["Resource"] == "*":
                assert as_list(statement["Action"]) == ["sagemaker:ListModelPackages"], (name, statement)
            if any(a.startswith("sagemaker:Create") for a in as_list(statement["Action"])):
                assert "flowers" in text(statement["Resource"])  # our jobs and group only


def test_function_log_groups_exist_first_with_retention(raw):
    groups = resources(raw, "AWS::Logs::LogGroup")
    by_name = {g["Properties"]["LogGroupName"]: lid for lid, g in groups.items()}
    for lid, group in groups.items():
        assert group["Properties"]["RetentionInDays"] > 0, lid
    for name, function in functions(raw).items():
        function_name = function["Properties"]["FunctionName"]
        assert function_name.startswith(f"{STACK}-")
        assert by_name[f"/aws/lambda/{function_name}"] in function["DependsOn"], name
    # SageMaker creates its own groups (maybe before this stack): CDK's LogRetention helper sets retention.
    retention = {r["Properties"]["LogGroupName"]: r["Properties"]["RetentionInDays"]
                 for r in resources(raw, "Custom::LogRetention").values()}
    assert set(retention) == {"/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs"}
    assert all(days > 0 for days in retention.values())
    role_id = _role_id(raw, "LogRetentionRole")
    assert all(s["Resource"] != "*" for s in statements(raw, role_id))  # not CDK's default grant on every group


def test_asynchronous_functions_have_a_dead_letter_queue(raw):
    dlq_id, _ = one(raw, "AWS::SQS::Queue", "AppEventsDeadLetters")
    for name in ("Tick", "OnSagemakerJob"):
        assert functions(raw)[name]["Properties"]["DeadLetterQueue"] == {
            "Type": "SQS", "TargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}}


# the API ---------------------------------------------------------------------------------------------------
# The decision for every route, made here once: a route the app declares without a line below fails
# test_every_route_the_app_declares_has_an_authorisation_decision; a route that moves from one set to
# another (POST /runs falling back to the API key, say) fails test_route_authorisation_is_exactly_the_table.
OPERATOR_ROUTES = {  # operators' IAM credentials (SigV4): they change what serves, start paid GPU jobs, or read
    # operator data: the photos a model was trained on, file paths and job names, the photos themselves
    ("/models/{version}/approve", "post"), ("/models/{version}/reject", "post"), ("/models/rollback", "post"),
    ("/runs", "post"), ("/models/{version}/photos", "get"), ("/status", "get"), ("/status/label-issues/thumbnail", "get"),
    ("/models/detail", "get"),  # GET /models with who asked for each run, job names, the registry's full reasons
}
APP_ROUTES = {("/app/predict", "post"), ("/app/models/current", "get")}  # SigV4 too: phones, with guest credentials
SIGV4_ROUTES = OPERATOR_ROUTES | APP_ROUTES
API_KEY_ROUTES = {  # clients with a key (scripts, the page): predictions, models, and the status without paths
    ("/predict", "post"), ("/models", "get"), ("/models/current", "get"), ("/models/{version}/confusion-matrix", "get"),
    ("/status/summary", "get"),
}
PUBLIC_ROUTES = {("/", "get"), ("/openapi.json", "get")}  # the web page (it asks for the key) and the contract


def _security_by_route(raw: dict) -> dict[tuple[str, str], object]:
    body = raw["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    return {(path, method): spec.get("security") for path, methods in body["paths"].items()
            for method, spec in methods.items() if method != "options"}  # CORS preflight carries no credentials


def test_route_authorisation_is_exactly_the_table(raw):
    body = raw["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert body["securityDefinitions"] == {
        "api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"},
        "sigv4": {"type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "awsSigv4"},
    }
    assert body["x-amazon-apigateway-api-key-source"] == "HEADER"
    security = _security_by_route(raw)
    assert {route for route, s in security.items() if s == [{"sigv4": []}]} == SIGV4_ROUTES
    assert {route for route, s in security.items() if s == [{"api_key": []}]} == API_KEY_ROUTES
    assert {route for route, s in security.items() if s is None} == PUBLIC_ROUTES
    assert set(security) == SIGV4_ROUTES | API_KEY_ROUTES | PUBLIC_ROUTES  # no route with any other security


def test_every_route_the_app_declares_has_an_authorisation_decision():
    import app

    declared = {(path, method.lower()) for path, methods in app.app.routes.items() for method in methods}
    decided = SIGV4_ROUTES | API_KEY_ROUTES | PUBLIC_ROUTES
    assert declared == decided, f"without a decision: {declared - decided}; decided but gone: {decided - declared}"
    # the decision and the app agree: IAM-authorised in app.py exactly where the table says SigV4
    iam = {(path, method.lower()) for path, methods in app.app.routes.items() for method, entry in methods.items()
           if entry.authorizer is not None}
    assert iam == SIGV4_ROUTES
    # and chalicelib/api/access.py, which the stack, the OpenAPI document and the CLI read, says the same
    from chalicelib.api import access
    from chalicelib.contract.vocabulary import Access

    assert set(access.routes(Access.OPERATOR)) == OPERATOR_ROUTES and set(access.routes(Access.APP)) == APP_ROUTES
    assert set(access.routes(Access.API_KEY)) == API_KEY_ROUTES and set(access.routes(Access.PUBLIC)) == PUBLIC_ROUTES


def test_the_cloud_client_signs_exactly_the_sigv4_routes():
    """flowers_cli signs a request with SigV4 exactly when the gateway asks for it: an operator command sent with
    only the API key would be refused, and a key route needs no AWS credentials."""
    from chalicelib.api import access
    from chalicelib.contract.vocabulary import Access
    from flowers_cli.client import is_signed_route

    for path, method in SIGV4_ROUTES | API_KEY_ROUTES | PUBLIC_ROUTES:
        concrete = path.replace("{version}", "0123456789abcdef")
        assert is_signed_route(method, concrete) == ((path, method) in SIGV4_ROUTES), (path, method)
        assert (access.access_of(method, concrete) == Access.OPERATOR) == ((path, method) in OPERATOR_ROUTES), (path, method)


def test_phone_apps_get_guest_credentials_from_an_identity_pool(raw):
    """Item 1 of issue 28: a Cognito identity pool of guest identities, enhanced flow only, whose role only Cognito may
    assume, for this pool's unauthenticated identities; its one permission: invoking the apps' routes."""
    pool_id, pool = one(raw, "AWS::Cognito::IdentityPool", "AppIdentityIdentityPool")
    assert pool["Properties"]["AllowUnauthenticatedIdentities"] is True
    assert pool["Properties"]["AllowClassicFlow"] is False  # no AssumeRoleWithWebIdentity by the app itself
    _, attachment = one(raw, "AWS::Cognito::IdentityPoolRoleAttachment", "AppIdentityRoles")
    assert attachment["Properties"]["IdentityPoolId"] == {"Ref": pool_id}
    assert set(attachment["Properties"]["Roles"]) == {"unauthenticated"}  # no authenticated role: no sign-in yet
    role_id = attachment["Properties"]["Roles"]["unauthenticated"]["Fn::GetAtt"][0]
    (trust,) = raw["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
                     "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                     "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": {"Ref": pool_id}},
                                   "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "unauthenticated"}}}
    (allowed,) = statements(raw, role_id)
    assert allowed["Effect"] == "Allow" and allowed["Action"] == "execute-api:Invoke"
    tails = sorted(text(r).rsplit("/api/", 1)[1].split('"')[0] for r in as_list(allowed["Resource"]))
    assert tails == ["GET/app/models/current", "POST/app/predict"]
    assert all({"Ref": "RestAPI"} in r["Fn::Join"][1] for r in as_list(allowed["Resource"]))  # this stack's API only
    assert not raw["Resources"][role_id]["Properties"].get("ManagedPolicyArns")
    assert {"IdentityPoolId", "Region"} <= set(raw["Outputs"])
    assert raw["Outputs"]["IdentityPoolId"]["Value"] == {"Ref": pool_id}


def test_api_binary_types_logging_and_throttling(raw):
    api = raw["Resources"]["RestAPI"]["Properties"]
    assert IMAGE_TYPES <= set(api["DefinitionBody"]["x-amazon-apigateway-binary-media-types"])
    access = api["AccessLogSetting"]
    assert access["DestinationArn"]["Fn::GetAtt"][0].startswith("AppApiAccessLogs")
    fields = json.loads(access["Format"])
    assert fields["status"] == "$context.status" and "apiKey" not in json.dumps(fields).replace("apiKeyId", "")
    (settings,) = api["MethodSettings"]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0
    assert api["StageName"] == "api"


def test_the_web_pages_api_key_has_its_own_usage_plan_with_throttling_and_quota(raw, template):
    """The stack makes one key, the web page's; scripts get one each (`flowers keys create`, tests/integration/test_cli_keys.py)."""
    assert len(resources(raw, "AWS::ApiGateway::ApiKey")) == 1 and len(resources(raw, "AWS::ApiGateway::UsagePlan")) == 1
    plan_id, plan = one(raw, "AWS::ApiGateway::UsagePlan", "AppPageUsagePlan")
    props = plan["Properties"]
    assert props["UsagePlanName"] == f"{STACK}-page"
    assert props["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}]
    assert props["Throttle"]["RateLimit"] > 0 and props["Throttle"]["BurstLimit"] > 0
    assert props["Quota"]["Limit"] > 0
    key_id, key = one(raw, "AWS::ApiGateway::ApiKey", "AppPageApiKey")
    assert key["Properties"]["Name"] == f"{STACK}-page"
    assert key["Properties"]["Enabled"] is True and "Value" not in key["Properties"]  # generated, never in the template
    template.has_resource_properties("AWS::ApiGateway::UsagePlanKey", {
        "KeyId": {"Ref": key_id}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan_id}})
    template.has_output("ApiKeyId", {"Value": {"Ref": key_id}})


# alarms ------------------------------------------------------------------------------------------------------
def test_alarms_for_dead_letters_failed_jobs_and_5xx(raw):
    alarms = resources(raw, "AWS::CloudWatch::Alarm")
    topic_id, _ = one(raw, "AWS::SNS::Topic", "AlarmTopic")
    for lid, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}], lid
    def metric(lid_prefix):
        (lid,) = [k for k in alarms if k.startswith(lid_prefix)]
        return alarms[lid]["Properties"]
    for prefix, queue_prefix in (("UploadsDeadLetterAlarm", "UploadsDeadLetters"),
                                 ("EventsDeadLetterAlarm", "AppEventsDeadLetters")):
        props = metric(prefix)
        assert props["MetricName"] == "ApproximateNumberOfMessagesVisible" and props["Threshold"] == 1
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        queue_id, _ = one(raw, "AWS::SQS::Queue", queue_prefix)
        assert props["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    job = metric("JobFailedAlarm")
    rule_id, rule = one(raw, "AWS::Events::Rule", "SageMakerJobFailedRule")
    assert job["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": rule_id}}]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"] and "Failed" in text(pattern["detail"])
    assert metric("RunFailedAlarm")["MetricName"] == "RunsFailed"
    malformed = metric("MalformedUploadsAlarm")  # the upload function's Powertools metric (EMF)
    assert (malformed["Namespace"], malformed["MetricName"], malformed["Statistic"]) == ("Flowers", "MalformedUploadMessages", "Sum")
    assert malformed["Dimensions"] == [{"Name": "service", "Value": "flowers"}] and malformed["Threshold"] == 1
    api = metric("Api5xxAlarm")
    (filter_id, log_filter), = resources(raw, "AWS::Logs::MetricFilter").items()
    assert api["MetricName"] == "Api5xx" and "$.status != 503" in log_filter["Properties"]["FilterPattern"]
    assert log_filter["Properties"]["LogGroupName"]["Ref"].startswith("AppApiAccessLogs")


# checks hygiene ------------------------------------------------------------------------------------------------
def test_every_checkov_suppression_has_a_reason(raw):
    skipped = 0
    for lid, resource in raw["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV") and len(skip["comment"]) > 20, (lid, skip)
            skipped += 1
    assert skipped > 0


def test_outputs_tell_how_to_use_the_stack(raw):
    assert {"ApiUrl", "ApiKeyId", "DatasetUri", "DatasetBucketName", "TensorBoardUri", "ArtifactBucketName",
            "StateTableName", "ModelPackageGroupName", "TrainingImageUri", "AlarmTopicArn",
            "SageMakerRoleArn", "ConversionRoleArn"} <= set(raw["Outputs"])


def test_context_values_are_parsed():
    values = {"use_spot": "false", "max_training_time": "7200", "min_accuracy": "0.9", "alarm_email": "a@b.c"}
    config = FlowersConfig.from_context(values.get)
    assert config.use_spot is False and config.max_training_time == 7200 and config.min_accuracy == 0.9
    assert config.lambda_environment()["USE_SPOT"] == "false"
    with pytest.raises(ValueError, match="use_spot"):
        FlowersConfig.from_context({"use_spot": "maybe"}.get)


# several stacks in one account and region ---------------------------------------------------------------------------
PSEUDO = {"AWS::AccountId": "123456789012", "AWS::Region": "eu-west-1", "AWS::Partition": "aws",
          "AWS::URLSuffix": "amazonaws.com"}
# Properties named *Name that are not an account-wide name of the resource itself.
NOT_OWN_NAMES = {"StageName",  # one per API
                 "MetricName", "DisplayName",  # a metric, a topic's display text
                 "PolicyName"}  # an inline policy, one per role
# Custom::LogRetention sets retention on SageMaker's own log groups: every stack shares them, by design.
SHARED_ON_PURPOSE = {"Custom::LogRetention"}


def rendered(value) -> str | None:
    """A name as it would be in one account and region; None when CloudFormation or another resource makes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return PSEUDO.get(argument)
        if function == "Fn::Join":
            parts = [rendered(part) for part in argument[1]]
            return None if None in parts else argument[0].join(parts)
        if function == "Fn::Sub" and isinstance(argument, str):
            names = re.findall(r"\$\{([^}]+)\}", argument)
            if all(name in PSEUDO for name in names):
                return re.sub(r"\$\{([^}]+)\}", lambda m: PSEUDO[m.group(1)], argument)
    return None


def physical_names(raw: dict) -> set[tuple[str, str]]:
    """Every name the template fixes for a resource of its own, with the resource type."""
    found = set()
    for resource in raw["Resources"].values():
        if resource["Type"] in SHARED_ON_PURPOSE:
            continue
        for key, value in resource.get("Properties", {}).items():
            if key.endswith("Name") and key not in NOT_OWN_NAMES and (name := rendered(value)) is not None:
                found.add((resource["Type"], name))
    return found


def upload_wiring(raw: dict) -> tuple[str, str, str]:
    """(queue the dataset bucket notifies, queue the upload function reads, that queue's name)."""
    _, bucket = one(raw, "AWS::S3::Bucket", "DatasetBucket")
    (notified,) = {c["Queue"]["Fn::GetAtt"][0] for c in bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]}
    (event,) = raw["Resources"]["OnUpload"]["Properties"]["Events"].values()
    read = event["Properties"]["Queue"]["Fn::GetAtt"][0]
    return notified, read, raw["Resources"][read]["Properties"]["QueueName"]


def test_two_stacks_fit_one_account_and_region(raw, second_raw):
    first, second = physical_names(raw), physical_names(second_raw)
    assert len(first) == len(second) >= 15  # queues, functions and their log groups, bucket, API, key, registry
    assert first.isdisjoint(second), sorted(first & second)
    assert all(name.startswith((SECOND_STACK, f"/aws/lambda/{SECOND_STACK}-", f"/aws/apigateway/{SECOND_STACK}-",
                                f"aws-waf-logs-{SECOND_STACK}"))
               for _kind, name in second), sorted(second)
    for template, stack in ((raw, STACK), (second_raw, SECOND_STACK)):
        notified, read, queue_name = upload_wiring(template)
        assert read == notified and queue_name == f"{stack}-uploads", (stack, notified, read, queue_name)
        # The functions use their own stack's registry (and job names), which their role allows.
        (group,) = [g["Properties"]["ModelPackageGroupName"]
                    for g in resources(template, "AWS::SageMaker::ModelPackageGroup").values()]
        assert group == stack
        for function in functions(template).values():
            assert function["Properties"]["Environment"]["Variables"]["MODEL_PACKAGE_GROUP"] == group


def test_the_model_package_group_defaults_to_the_stack_name_unless_set():
    assert FlowersConfig.from_context({}.get, stack_name="flowers-dev").model_package_group == "flowers-dev"
    given = {"model_package_group": "shared-registry"}
    assert FlowersConfig.from_context(given.get, stack_name="flowers-dev").model_package_group == "shared-registry"
    assert FlowersConfig.from_context({}.get).model_package_group == app_settings.Settings().model_package_group


def test_the_api_reads_only_training_jobs_validation_reports(raw):
    """GET /status reads each job's output.tar.gz (validation.json); nothing else under training/."""
    (api_role,) = {f["Properties"]["Role"]["Fn::GetAtt"][0] for name, f in functions(raw).items() if name == "APIHandler"}
    found = {s.get("Sid"): s for s in statements(raw, api_role)}
    read = found["ReadValidationReports"]
    assert read["Action"] == "s3:GetObject" and text(read["Resource"]).endswith('/training/*/output/output.tar.gz"]]}')
    for statement in statements(raw, api_role):  # listing training/ finds them (and a warm start's model, for POST /runs)
        if "/training/" in text(statement.get("Resource")) or "training/" in text(statement.get("Condition")):
            assert statement == read or statement["Action"] == "s3:ListBucket", statement


def test_the_pipeline_may_read_training_json_and_no_other_dataset_object(raw):
    """Cloud hyperparameters (chalicelib/pipeline/job_specs.py): without s3:GetObject on training.json the HeadObject gets
    a 403 and every run fails. That key only: the pipeline Lambdas list the photos but never read them."""
    from chalicelib.contract.hyperparameters import FILE_NAME
    from flowers_infra.config import FlowersConfig

    role = functions(raw)["Tick"]["Properties"]["Role"]["Fn::GetAtt"][0]
    on_dataset_objects = [s for s in statements(raw, role) if "datasets" in text(s["Resource"])
                          and s["Effect"] == "Allow" and as_list(s["Action"]) != ["s3:ListBucket", "s3:ListBucketVersions"]]
    assert len(on_dataset_objects) == 1, on_dataset_objects
    grant = on_dataset_objects[0]
    assert as_list(grant["Action"]) == ["s3:GetObject"] and not isinstance(grant["Resource"], list)
    assert text(grant["Resource"]).endswith(f'/{FlowersConfig().dataset_prefix}{FILE_NAME}"]]}}'), grant["Resource"]


def test_api_gateways_own_answers_carry_the_security_headers(raw):
    """A 403 for a missing key or signature, a 429, a 504: API Gateway answers them without the app, with nosniff and
    no-referrer all the same (the policy's quoted keywords cannot be a static value there)."""
    from chalicelib.api import security_headers

    responses = raw["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX"}
    for kind, response in responses.items():
        assert response["responseParameters"] == {
            "gatewayresponse.header.X-Content-Type-Options": "'nosniff'",
            "gatewayresponse.header.Referrer-Policy": "'no-referrer'"}, kind
    assert set(security_headers.HEADERS) == {"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"}
