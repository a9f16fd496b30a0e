"""An AWS error while a run is prepared (chalicelib/pipeline/preparation.py): the run fails once, with the reason in
GET /status and a Run Failed event, the data set is let go (no relaunch every RELAUNCH_AFTER), and once the cause is
gone the next upload or POST /runs trains. The refusals are S3's own answers to a role without the permission,
given through botocore's before-call hook, so the real adapter (chalicelib/adapters/aws/s3_objects.py) meets the
real ClientError."""
from __future__ import annotations

import json

import pytest

from chalicelib import services
from chalicelib.pipeline.orchestrator import RELAUNCH_AFTER
from pipeline_fixtures import aws  # noqa: F401  (fixture)
from test_domain_events_published import world  # noqa: F401  (fixture: the pipeline with the stack's bus)


def details(world) -> list[dict]:
    """The domain events the bus delivered since last asked: their detail."""
    return [event["detail"] for event in world.seen()]


def deny(world, operations: tuple[str, ...], key_ends: str):
    """The pipeline's S3 client is refused `operations` on keys ending `key_ends`, as S3 refuses a role without the
    permission: HEAD answers a bare 403 (no body to carry a code), the others AccessDenied. Returns the undo."""
    s3 = services.get().objects._s3  # type: ignore[attr-defined]

    def refuse(model, params, **_):
        if model.name in operations and params["url_path"].split("?")[0].endswith(key_ends):
            error = {"Code": "403", "Message": "Forbidden"} if model.name == "HeadObject" else {
                "Code": "AccessDenied", "Message": "Access Denied"}
            return _Http(403), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}
        return None

    s3.meta.events.register(f"before-call.s3", refuse)
    return lambda: s3.meta.events.unregister("before-call.s3", refuse)


class _Http:
    def __init__(self, status_code: int):
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""


def _training_json(world, document) -> None:
    world.aws.s3.put_object(Bucket=world.aws.dataset_bucket, Key=world.aws.prefix + "training.json",
                            Body=json.dumps(document).encode())


@pytest.mark.parametrize("recover", ["upload", "post_runs"])
def test_a_training_json_the_role_cannot_read_fails_the_run_once_and_the_next_run_trains(world, recover):
    _training_json(world, {"epochs": 3})
    undo = deny(world, ("GetObject",), "/training.json")
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    result = world.tick()
    uri = f"s3://{world.aws.dataset_bucket}/{world.aws.prefix}training.json"
    assert result["action"] == "failed" and world.training_jobs() == []
    assert result["reason"] == f"preparing the run failed: reading {uri}: AccessDenied (GetObject): Access Denied"
    status = world.status()
    assert status["last_outcome"]["status"] == "failed" and status["last_outcome"]["reason"] == result["reason"]
    assert status["running_job"] is None
    assert [(e["type"], e["reason"]) for e in details(world)] == [("Run Failed", result["reason"])]

    # No relaunch loop: later ticks find nothing to run, fail nothing and publish nothing.
    for _ in range(3):
        world.now += RELAUNCH_AFTER + 1
        assert world.tick()["action"] not in ("started", "failed")
    assert world.training_jobs() == [] and details(world) == [] and world.status()["last_outcome"]["reason"] == result["reason"]

    undo()
    if recover == "upload":
        world.upload(["daisy/c.jpg"])
        world.now += 601
        started = world.tick()
    else:
        answer = world.client.http.post("/runs", headers={"Content-Type": "application/json"}, body=b"{}")
        assert answer.status_code == 200
        started = answer.json_body
    assert started["action"] == "started" and world.training_jobs() == [started["job"]]
    assert world.aws.sagemaker.describe_training_job(TrainingJobName=started["job"])["HyperParameters"]["epochs"] == "3"


def test_a_refused_listing_names_the_code(world):
    """The existence check (a listing of the key, chalicelib/adapters/aws/s3_objects.py) refused: the reason names
    S3's code and the operation."""
    _training_json(world, {"epochs": 3})
    deny(world, ("ListObjectsV2",), "")
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    reason = world.tick()["reason"]
    assert reason.startswith("preparing the run failed: reading s3://") and world.training_jobs() == []
    assert reason.endswith(": AccessDenied (ListObjectsV2): Access Denied"), reason


def test_a_manifest_that_cannot_be_written_fails_the_run(world):
    deny(world, ("PutObject",), ".json")
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    result = world.tick()
    assert result["action"] == "failed" and world.training_jobs() == []
    assert result["reason"].startswith(f"preparing the run failed: writing s3://{world.aws.artifacts}/manifests/")
    assert "AccessDenied (PutObject)" in result["reason"] and world.status()["running_job"] is None
    world.now += RELAUNCH_AFTER + 1
    assert world.tick()["action"] not in ("started", "failed") and [e["type"] for e in details(world)] == ["Run Failed"]
