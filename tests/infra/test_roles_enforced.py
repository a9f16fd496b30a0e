"""Every cloud handler run under the role the synthesized stack gives its function, enforced.

The handlers run against moto through the Chalice test client, as in tests/integration; every AWS call they make
is checked against the role of the function making it, read from the synthesized template (tests/iam_harness.py,
tests/iam_policy.py, tests/iam_calls.py). A call the role does not allow is refused as AWS would refuse it, and
fails the scenario even when the code swallows the refusal. Then the other way round: every action each role is
granted must be needed by some call the scenarios made (removed one at a time, some call is denied), or carry its
reason in NOT_MADE_BY_THE_CODE.

A new function or role is picked up from the template; a new call must be mapped in tests/iam_calls.py CALLS.
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO / "tests" / "integration"))  # World: the integration tests' driver of the handlers

from chalice.test import Client  # noqa: E402

import app as chalice_app  # noqa: E402
from iam_calls import Where  # noqa: E402
from iam_harness import API_FUNCTION, Enforcer, Roles  # noqa: E402
from iam_policy import Template  # noqa: E402
from pipeline_fixtures import (  # noqa: E402
    ACCOUNT,
    ENV,
    REGION,
    aws_account,
    output_archive,
    principal,
    processing_state_event,
    s3_body,
    s3_record,
    s3_test_event_body,
    sample_photos,
    signed_request,
    tiny_model,  # noqa: F401  (fixture)
    training_state_event,
)
from test_infra import cdk_out, raw  # noqa: E402,F401  (fixtures: the synthesized template)
from test_pipeline_aws import World  # noqa: E402

OPERATOR = {"Content-Type": "application/json"}

# Granted actions no code path calls, each with why the role holds it: (role logical id prefix, action) -> reason.
# (A role is matched by the name its logical id contains: CDK adds a path and a hash.)
NOT_MADE_BY_THE_CODE = {
    ("UploadFunctionRole", "sqs:ReceiveMessage"): "the Lambda service's SQS event source mapping reads the queue as the function's role",
    ("UploadFunctionRole", "sqs:DeleteMessage"): "the event source mapping deletes the messages the function answered",
    ("UploadFunctionRole", "sqs:GetQueueAttributes"): "the event source mapping reads the queue's attributes",
    ("UploadFunctionRole", "sqs:ChangeMessageVisibility"): "the event source mapping returns failed messages (partial batch response)",
    ("PipelineFunctionRole", "sqs:SendMessage"): "the Lambda service sends failed asynchronous invocations to the dead-letter queue as the function's role",
    ("*", "logs:CreateLogStream"): "the Lambda runtime writes the function's logs as its role",
    ("*", "logs:PutLogEvents"): "the Lambda runtime writes the function's logs as its role",
}


# the stack's roles, with the names these tests give its resources ------------------------------------------------
def _bus_name(raw) -> str:  # noqa: F811
    (bus,) = [r for r in raw["Resources"].values() if r["Type"] == "AWS::Events::EventBus"]
    return bus["Properties"]["Name"]


def _lock_days(raw) -> str:  # noqa: F811
    (days,) = {f["Properties"]["Environment"]["Variables"]["LINEAGE_LOCK_DAYS"] for f in raw["Resources"].values()
               if f["Type"] == "AWS::Serverless::Function"}
    return str(days)


@pytest.fixture(scope="session")
def stack_env(raw) -> dict[str, str]:  # noqa: F811
    """The settings a deployed function gets that name the stack's resources, as these tests name them: ENV's, and
    the domain events' bus under its own (fixed) name; and the stack's lineage lock (manifests locked as written,
    models at registration: the calls that need s3:PutObjectRetention)."""
    return {**ENV, "EVENT_BUS_NAME": _bus_name(raw), "LINEAGE_LOCK_DAYS": _lock_days(raw)}


@pytest.fixture(scope="session")
def roles(raw, stack_env) -> Roles:  # noqa: F811
    template = Template(raw, account=ACCOUNT, region=REGION)
    for function in template.function_roles():
        for variable, value in template.environment(function).items():
            if variable in stack_env:
                template.bind(value, stack_env[variable])
    return Roles(template)


class Scene(World):
    """The integration tests' World, plus the stack's resources CloudFormation would have made and the enforcer."""

    def __init__(self, aws_world, client, enforcer: Enforcer):
        super().__init__(aws_world, client)
        self.enforcer = enforcer

        def same_clock(svc) -> None:  # each function's own container reads the scene's clock too
            svc.orchestrator.clock = svc.read_model.clock = lambda: self.now

        enforcer.prepare = same_clock

    def http(self, method: str, path: str, **kwargs):
        if method == "get":  # the pictures are binary: API Gateway wants an Accept that names them
            kwargs.setdefault("headers", {"Accept": "image/png" if "confusion" in path else "image/jpeg"})
        return getattr(self.client.http, method)(path, **kwargs)

    def conversion_output(self, version: str, job: str, accuracy: float, labels=("daisy", "roses")) -> None:
        """What the convert entrypoint writes, naming the training job it came from (which a warm start reads)."""
        self.write_conversion_output(version, accuracy, labels=labels)
        key = f"models/{version}/metadata.json"
        metadata = json.loads(self.aws.s3.get_object(Bucket=self.aws.artifacts, Key=key)["Body"].read())
        metadata["source_job"] = job
        metadata["metrics"]["test"]["confusion_matrix"] = [[1, 0], [0, 1]]
        self.aws.s3.put_object(Bucket=self.aws.artifacts, Key=key, Body=json.dumps(metadata).encode())

    def operator(self, path: str, body: dict, who: str) -> dict:
        """An operator's request signed by `who` (an IAM principal), as API Gateway's IAM authorizer hands it to the
        API function: the caller it records."""
        with self.enforcer.acting_as(API_FUNCTION):
            status, answer = signed_request(chalice_app.app, "POST", path, json.dumps(body).encode(), principal(who), "flowers-cli")
        assert status == 200, (path, status, answer)
        assert answer["by"]["principal"] == principal(who), answer
        return answer

    def training_output(self, job: str, report: dict) -> None:
        """What SageMaker uploads at a training job's end: model.tar.gz and output.tar.gz (the validation report)."""
        prefix = f"training/{job}/output/"
        self.aws.s3.put_object(Bucket=self.aws.artifacts, Key=prefix + "output.tar.gz", Body=output_archive(report))
        model = io.BytesIO()
        with tarfile.open(fileobj=model, mode="w:gz"):
            pass
        self.aws.s3.put_object(Bucket=self.aws.artifacts, Key=prefix + "model.tar.gz", Body=model.getvalue())


def _scene(roles: Roles, stack_env: dict[str, str], monkeypatch, run: Callable[[Scene], None]) -> Enforcer:
    import boto3

    enforcer = Enforcer(roles, Where(ACCOUNT, REGION))
    enforcer.install(monkeypatch)
    with aws_account(monkeypatch, stack_env) as world:
        # The buckets as the stack makes them: the data set versioned (a manifest names each photo's version), the
        # artifacts with Object Lock (manifests and models are locked).
        world.s3.put_bucket_versioning(Bucket=world.dataset_bucket, VersioningConfiguration={"Status": "Enabled"})
        world.s3.delete_bucket(Bucket=world.artifacts)
        world.s3.create_bucket(Bucket=world.artifacts, ObjectLockEnabledForBucket=True)
        # What CloudFormation makes beside the buckets and the table: the registry's group and the events' bus.
        world.sagemaker.create_model_package_group(ModelPackageGroupName=stack_env["MODEL_PACKAGE_GROUP"])
        boto3.client("events", region_name=REGION).create_event_bus(Name=stack_env["EVENT_BUS_NAME"])
        with Client(chalice_app.app) as client:
            run(Scene(world, client, enforcer))
    return enforcer


# the scenarios: every handler, every route ------------------------------------------------------------------------
def upload_train_convert_promote_and_operate(s: Scene) -> None:
    """Uploads (and S3's test event), cloud hyperparameters, a run through training, conversion, registration (its model
    locked) and promotion, a rerun of its version by hand (POST /runs), a warm-started second run compared with
    production's manifest and labels (the relabel gate) and left pending, every operator action (its caller recorded)
    and every read route."""
    s.aws.s3.put_object(Bucket=s.aws.dataset_bucket, Key=s.aws.prefix + "training.json", Body=b'{"epochs": 3}')
    photo = sample_photos(1)[0].read_bytes()
    assert s.upload(["daisy/a.jpg", "roses/b.jpg"], duplicate=True, content=photo)[0]["new"] == 2
    s.deliver([s3_test_event_body(s.aws.dataset_bucket)])
    s.now += 601
    first = s.tick()
    assert first["action"] == "started", first
    job, v1 = first["job"], first["version"]
    assert s.aws.sagemaker.describe_training_job(TrainingJobName=job)["HyperParameters"]["epochs"] == "3"  # training.json
    report = {"usable_images": 2, "label_issues": {"count": 3, "photos": 2, "issues": [
        {"file": "daisy/a.jpg", "given": "daisy", "suggested": "roses", "confidence": 0.9},
        {"file": "roses/gone.jpg", "given": "roses", "suggested": "daisy", "confidence": 0.8},
        {"file": "../../etc/passwd", "given": "roses", "suggested": "daisy", "confidence": 0.7}]}}
    s.training_output(job, report)
    assert s.sagemaker_event(training_state_event(job, "Completed"))["action"] == "converting"
    s.conversion_output(v1, job, 0.91)
    done = s.sagemaker_event(processing_state_event(job + "-convert", "Completed"))
    assert done["action"] == "registered" and done["model_status"] == "approved", done

    status = s.status()
    assert status["validation"]["label_issues"]["count"] == 3, status
    for path, code in (("/models", 200), ("/models/current", 200), (f"/models/{v1}/photos", 200),
                       (f"/models/{v1}/confusion-matrix", 200), ("/openapi.json", 200), ("/", 200)):
        answer = s.http("get", path)
        assert answer.status_code == code, (path, answer.status_code, answer.body[:300])
    assert s.http("get", f"/models/{v1}/photos").json_body["count"] == 2  # the run's manifest
    thumbnail = s.http("get", "/status/label-issues/thumbnail?file=daisy%2Fa.jpg")
    assert thumbnail.status_code == 200 and thumbnail.headers["Content-Type"] == "image/jpeg", thumbnail.body[:300]
    for file in ("roses/gone.jpg", "../../etc/passwd", "roses/b.jpg"):  # gone; listed but outside the data set; not listed
        answer = s.http("get", f"/status/label-issues/thumbnail?file={file}")
        assert answer.status_code == 404 and json.loads(answer.body)["error"]["code"] == "not_found", (file, answer.body)
    # A listed name that leaves the data set's prefix is refused before any read: no call names it.
    assert not [c.describe() for c in s.enforcer.calls if ".." in json.dumps(c.params, default=str)]

    # A rerun of the same version by hand (POST /runs, signed): its own run record, job and model version.
    rerun = s.operator("/runs", {"reason": "the same photos again"}, "alice")
    assert (rerun["action"], rerun["version"], rerun["job"]) == ("started", v1, job + "-a2"), rerun
    assert rerun["model_version"] != v1
    failed = s.sagemaker_event(training_state_event(rerun["job"], "Failed", reason="AlgorithmError: too few photos"))
    assert failed["action"] == "failed", failed

    # A second run: warm-started from the first (its metadata, its job, its model.tar.gz), left pending by the gate.
    s.upload(["daisy/c.jpg"])
    s.now += 601
    second = s.tick()
    assert second["action"] == "started", second
    s.training_output(second["job"], {"usable_images": 3})
    s.sagemaker_event(training_state_event(second["job"], "Completed"))
    s.conversion_output(second["version"], second["job"], 0.5)
    done = s.sagemaker_event(processing_state_event(second["job"] + "-convert", "Completed"))
    assert done["model_status"] == "pending", done
    v2 = second["version"]
    # The relabel gate compared it with production's manifest and labels (read by the function registering it).
    read = {c.params["Key"] for c in s.enforcer.calls if c.function == "OnSagemakerJob" and c.operation == "GetObject"}
    assert {f"manifests/{v1}.json", f"models/{v1}/metadata.json", f"manifests/{v2}.json"} <= read, read
    # Its files were locked at registration, as the first model's (PutObjectRetention on each).
    locked = {c.params["Key"] for c in s.enforcer.calls if c.operation == "PutObjectRetention"}
    assert {f"models/{v}/{name}" for v in (v1, v2) for name in ("model.tflite", "labels.txt", "metadata.json")} <= locked, locked
    # Each operator action, signed: who did it is kept on the model's run record (UpdateItem), the registry and the event.
    for path, body, who in ((f"/models/{v2}/approve", {}, "bob"), ("/models/rollback", {"reason": "bad on phones"}, "carol"),
                            (f"/models/{v2}/approve", {}, "bob"), (f"/models/{v2}/reject", {"reason": "blurry"}, "carol")):
        s.operator(path, body, who)
    actions = [item for item in s.aws.dynamodb.scan(TableName=s.aws.env["STATE_TABLE"])["Items"]
               if item["sk"]["S"].startswith(f"run#{v2}") and "actions" in item]
    assert len(actions) == 1 and len(actions[0]["actions"]["L"]) >= 3, actions
    # POST /runs: the data set as it is now, uploads still in their quiet period included.
    s.upload(["roses/d.jpg"])
    answer = s.http("post", "/runs", headers=OPERATOR, body=b'{"full": true}')
    assert answer.status_code == 200 and answer.json_body["action"] == "started", answer.body


def heal_lost_events_and_fail(s: Scene) -> None:
    """The tick's hourly listing (a lost upload notification), a lost job event healed by the tick, failures of
    training and conversion, and a bad training.json."""
    s.aws.s3.put_object(Bucket=s.aws.dataset_bucket, Key=s.aws.prefix + "daisy/lost.jpg", Body=b"no notification")
    s.now += 3601
    assert s.tick()["action"] == "healed"  # counted as one upload: a run follows its quiet period
    s.now += 601
    run = s.tick() if not s.training_jobs() else {"job": s.training_jobs()[0]}
    assert s.training_jobs() == [run["job"]], s.training_jobs()
    s.now += 901  # no state-change event came; moto reports the job Completed
    assert s.tick()["action"] == "converting"
    s.now += 901  # nor for the conversion: moto reports it Completed, and it wrote nothing
    assert s.tick()["action"] == "failed" and "conversion output" in s.status()["last_outcome"]["reason"]

    s.upload(["roses/x.jpg"])
    s.now += 601
    run = s.tick()
    assert s.sagemaker_event(training_state_event(run["job"], "Failed", reason="AlgorithmError: too few"))["action"] == "failed"
    s.sagemaker_event(training_state_event(run["job"], "Completed"))  # a late event of a failed run: ignored
    failed = s.sagemaker_event(processing_state_event(run["job"] + "-convert", "Failed", reason="ConversionError: x"))
    assert failed["action"] == "ignored", failed

    s.aws.s3.put_object(Bucket=s.aws.dataset_bucket, Key=s.aws.prefix + "training.json", Body=b'{"epochs": -3}')
    s.upload(["roses/y.jpg"])
    s.now += 601
    assert s.tick()["action"] == "failed"
    assert "bad hyperparameters" in s.status()["last_outcome"]["reason"]


def predict_and_classify(s: Scene, model: Path) -> None:
    """POST /predict with the served model, and photos under classify/ answered into predictions/ (a redelivery finds
    its output; a photo gone before its batch ran is answered with an error line)."""
    from test_predict import register

    register(s.aws, model)
    photo = sample_photos(1)[0].read_bytes()
    answer = s.http("post", "/predict", headers={"Content-Type": "image/jpeg"}, body=photo)
    assert answer.status_code == 200 and answer.json_body["predictions"], answer.body[:300]
    records, bodies = [], []
    for path in sample_photos(2):
        key = "classify/" + path.name
        s.aws.s3.put_object(Bucket=s.aws.dataset_bucket, Key=key, Body=path.read_bytes())
        records.append(s3_record(s.aws.dataset_bucket, key, s.now, etag=hashlib.md5(path.read_bytes()).hexdigest()))
    records.append(s3_record(s.aws.dataset_bucket, "classify/gone.jpg", s.now))
    bodies = [s3_body(r) for r in records]
    first = s.deliver(bodies)[0]
    assert first["batchItemFailures"] == [] and first["classified"]["action"] == "classified", first
    assert s.deliver(bodies)[0]["batchItemFailures"] == []  # redelivered: the batch's output is there already


SCENARIOS = {
    "pipeline and operators": lambda s, model: upload_train_convert_promote_and_operate(s),
    "healing and failures": lambda s, model: heal_lost_events_and_fail(s),
    "predict and classify": predict_and_classify,
}


_RUNS: dict[str, Enforcer] = {}  # each scenario's calls, once per test process (the last two tests need them all)


def _run(name: str, roles: Roles, stack_env: dict[str, str], model: Path) -> Enforcer:
    if name not in _RUNS:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _RUNS[name] = _scene(roles, stack_env, monkeypatch, lambda s: SCENARIOS[name](s, model))
    return _RUNS[name]


def _all_calls(roles: Roles, stack_env: dict[str, str], model: Path) -> list:
    enforcers = [_run(name, roles, stack_env, model) for name in SCENARIOS]
    assert not any(e.problems for e in enforcers), "\n".join(e.report() for e in enforcers)
    return [call for e in enforcers for call in e.calls]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_handlers_run_under_their_roles(name, roles, stack_env, tiny_model):  # noqa: F811
    enforcer = _run(name, roles, stack_env, tiny_model)
    assert enforcer.calls, "no AWS call was recorded: the enforcer saw nothing"
    assert not enforcer.problems, "\n" + enforcer.report()


def test_every_function_has_a_role_and_is_exercised(roles, stack_env, tiny_model):  # noqa: F811
    functions = {call.function for call in _all_calls(roles, stack_env, tiny_model)}
    assert functions == set(roles.function_roles), set(roles.function_roles) - functions


def _reason(role: str, action: str) -> str | None:
    for (prefix, granted), why in NOT_MADE_BY_THE_CODE.items():
        if granted == action and (prefix == "*" or prefix in role):
            return why
    return None


def test_every_granted_action_is_needed_by_some_call(roles, stack_env, tiny_model):  # noqa: F811
    """Each role's statements, one (statement, action) at a time removed: some call the scenarios made is then
    denied. An action no call needs is removed from the role (infra/flowers_infra/chalice_app.py) or listed with
    its reason in NOT_MADE_BY_THE_CODE; a reason for an action that a call does need is stale, and fails too."""
    calls = _all_calls(roles, stack_env, tiny_model)
    unused, stale = [], []
    for role, statements in roles.statements.items():
        made = [(r, d) for call in calls if call.role == role for r, d in zip(call.requests, call.decisions) if d.allowed]
        for index, statement in enumerate(statements):
            if statement.effect != "Allow":
                continue
            for action in statement.actions:
                rest = [*statements[:index], *([kept] if (kept := statement.without_action(action)) else []),
                        *statements[index + 1:]]
                needed = any(not roles.decide(role, request, rest).allowed for request, _ in made)
                reason = _reason(role, action)
                if not needed and reason is None:
                    unused.append(f"{statement.label}: {action} on {list(statement.resources)}")
                elif needed and reason is not None:
                    stale.append(f"{statement.label}: {action} is needed by a call, yet listed as '{reason}'")
    assert not unused, "granted, and no call needs it (remove it, or give its reason in NOT_MADE_BY_THE_CODE):\n" + "\n".join(unused)
    assert not stale, "\n".join(stale)


def test_manifests_are_written_only_as_write_once_requests(roles, stack_env, tiny_model):  # noqa: F811
    """The launch's manifest writes (the tick's and POST /runs') carry If-None-Match, so the artifact bucket's policy
    lets them through; the same write without it is refused by that policy, whatever the role allows."""
    from iam_policy import Request

    writes = [call for call in _all_calls(roles, stack_env, tiny_model)
              if call.operation == "PutObject" and str(call.params.get("Key", "")).startswith("manifests/")]
    assert {call.function for call in writes} == {"Tick", API_FUNCTION}, [c.describe() for c in writes]
    for call in writes:
        assert call.params.get("IfNoneMatch") == "*" and all(d.allowed for d in call.decisions), call.describe()
        unconditional = roles.decide(call.role, Request("s3:PutObject", call.requests[0].resource))
        assert not unconditional.allowed and "ManifestsAreWrittenOnce" in unconditional.explain(), unconditional.explain()
