"""The faults a cloud really produces, against moto through the deployed functions: transient job
failures retried with new names, permanent ones not; a run forced by hand (POST /runs); metadata
of any shape never wedging the data set; the gate's floor; an upload whose notification was lost."""
from __future__ import annotations

import json

import pytest

from chalicelib import services
from pipeline_fixtures import aws, processing_state_event, training_state_event  # noqa: F401  (fixture)
from test_pipeline_aws import World, world  # noqa: F401  (fixture)

JSON = {"Content-Type": "application/json"}
CAPACITY = "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type."


def start_run(world) -> dict:
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    started = world.tick()
    assert started["action"] == "started"
    return started


def test_a_transient_training_failure_is_retried_with_a_new_job_and_backoff(world):
    first = start_run(world)
    retrying = world.sagemaker_event(training_state_event(first["job"], "Failed", reason=CAPACITY))
    assert retrying["action"] == "retrying" and retrying["in_seconds"] == 300
    status = world.status()["running_job"]
    assert status["stage"] == "waiting" and status["failed_attempts"] == [f"training: training failed: {CAPACITY}"]
    world.now += 299
    assert world.tick()["action"] == "busy" and len(world.training_jobs()) == 1  # not before its time
    world.now += 2
    second = world.tick()
    assert second == {"action": "started", "job": first["job"] + "-a2", "version": first["version"]}
    assert sorted(world.training_jobs()) == [first["job"], first["job"] + "-a2"]
    # A late replay of the first job's failure changes nothing; the second attempt goes on to a model.
    assert world.sagemaker_event(training_state_event(first["job"], "Failed", reason=CAPACITY))["action"] == "ignored"
    world.sagemaker_event(training_state_event(second["job"], "Completed"))
    assert world.processing_jobs() == [second["job"] + "-convert"]
    world.write_conversion_output(first["version"], 0.9)
    done = world.sagemaker_event(processing_state_event(second["job"] + "-convert", "Completed"))
    assert done["action"] == "registered" and done["model_status"] == "approved"
    outcome = world.status()["last_outcome"]
    assert "after 1 failed attempt(s)" in outcome["reason"] and "CapacityError" in outcome["reason"]


def test_transient_failures_give_up_after_max_attempts_and_permanent_ones_at_once(world):
    run = start_run(world)
    job = run["job"]
    for attempt in (2, 3):
        assert world.sagemaker_event(training_state_event(job, "Failed", reason=CAPACITY))["action"] == "retrying"
        world.now += 10_000
        job = world.tick()["job"]
        assert job.endswith(f"-a{attempt}")
    failed = world.sagemaker_event(training_state_event(job, "Failed", reason=CAPACITY))
    assert failed["action"] == "failed" and "after 2 failed attempt(s)" in failed["reason"]
    assert world.status()["running_job"] is None

    world.upload(["tulips/c.jpg"])
    world.now += 601
    other = world.tick()
    permanent = world.sagemaker_event(training_state_event(other["job"], "Failed", reason="AlgorithmError: too few images"))
    assert permanent["action"] == "failed" and len(world.training_jobs()) == 4


def test_a_transient_conversion_failure_is_retried(world):
    run = start_run(world)
    world.sagemaker_event(training_state_event(run["job"], "Completed"))
    failed = world.sagemaker_event(processing_state_event(run["job"] + "-convert", "Failed", reason="InternalServerError: try again"))
    assert failed["action"] == "retrying"
    world.now += 301
    assert world.tick() == {"action": "converting", "job": run["job"] + "-a2-convert"}
    assert sorted(world.processing_jobs()) == [run["job"] + "-a2-convert", run["job"] + "-convert"]
    world.write_conversion_output(run["version"], 0.9)
    assert world.sagemaker_event(processing_state_event(run["job"] + "-a2-convert", "Completed"))["action"] == "registered"


def test_a_run_forced_by_hand_retrains_a_version_that_failed(world):
    run = start_run(world)
    world.sagemaker_event(training_state_event(run["job"], "Failed", reason="AlgorithmError: out of memory"))
    world.now += 601
    assert world.tick()["action"] == "idle"  # the version had its run: nothing starts on its own
    forced = world.client.http.post("/runs", headers=JSON, body=json.dumps({"reason": "bigger instance now"}).encode())
    assert forced.status_code == 200, forced.body
    answer = dict(forced.json_body)
    model_version = answer.pop("model_version")  # a run of its own: its model a version of its own
    assert answer == {"action": "started", "job": run["job"] + "-a2", "version": run["version"], "reason": "bigger instance now",
                                "start_from": {"kind": "imagenet", "reason": "no production model yet"},
                                "by": {"principal": "unknown", "kind": "iam", "via": "http"}}  # Chalice's gateway: no IAM identity
    assert model_version != run["version"] and len(model_version) == 16
    busy = world.client.http.post("/runs", headers=JSON, body=b"{}")
    assert busy.status_code == 409 and "is training" in busy.json_body["error"]["message"]
    world.sagemaker_event(training_state_event(run["job"] + "-a2", "Completed"))
    world.write_conversion_output(model_version, 0.9)
    assert world.sagemaker_event(processing_state_event(run["job"] + "-a2-convert", "Completed"))["action"] == "registered"
    models = {m["version"]: m for m in world.client.http.get("/models").json_body["models"]}
    assert models[model_version]["status"] == "approved" and models[model_version]["dataset_version"] == run["version"]
    assert models[run["version"]]["status"] == "failed"  # the first run's record is kept
    again = world.client.http.post("/runs", headers=JSON, body=b"{}")  # a version that made a model trains again on demand
    assert again.status_code == 200 and again.json_body["job"] == run["job"] + "-a3", again.json_body
    assert world.client.http.post("/runs", body=b"{}").status_code == 415  # operators' rule: JSON only


@pytest.mark.parametrize("metadata", [
    None, "a string", {"model": None}, {"model": {"sha256": "x", "size_bytes": "big"}},
    {"model": {"sha256": "x", "size_bytes": 3}, "metrics": None},
    {"model": {"sha256": "x", "size_bytes": 3}, "metrics": {"test": None, "baseline": "n/a"}},
    {"model": {"sha256": "x", "size_bytes": 3}, "metrics": {"test": {"accuracy": "high", "count": None}}},
])
def test_malformed_conversion_output_fails_the_run_and_the_next_upload_trains(world, metadata):
    run = start_run(world)
    world.sagemaker_event(training_state_event(run["job"], "Completed"))
    prefix = f"models/{run['version']}/"
    world.aws.s3.put_object(Bucket=world.aws.artifacts, Key=prefix + "model.tflite", Body=b"tflite")
    world.aws.s3.put_object(Bucket=world.aws.artifacts, Key=prefix + "metadata.json", Body=json.dumps(metadata).encode())
    result = world.sagemaker_event(processing_state_event(run["job"] + "-convert", "Completed"))
    assert result["action"] in ("failed", "registered"), result
    if result["action"] == "registered":  # readable enough to register: the gate left it for a person
        assert result["model_status"] == "pending"
    assert world.status()["running_job"] is None
    world.upload(["tulips/next.jpg"])
    world.now += 601
    assert world.tick()["action"] == "started"


def test_a_model_tested_on_a_handful_of_photos_waits_for_a_person(world):
    run = start_run(world)
    world.sagemaker_event(training_state_event(run["job"], "Completed"))
    world.write_conversion_output(run["version"], 1.0)
    key = f"models/{run['version']}/metadata.json"
    metadata = json.loads(world.aws.s3.get_object(Bucket=world.aws.artifacts, Key=key)["Body"].read())
    metadata["metrics"]["test"]["count"] = 2
    world.aws.s3.put_object(Bucket=world.aws.artifacts, Key=key, Body=json.dumps(metadata).encode())
    done = world.sagemaker_event(processing_state_event(run["job"] + "-convert", "Completed"))
    assert done["model_status"] == "pending" and "only 2 test photos" in done["reason"]


def test_an_upload_whose_notification_was_lost_is_trained_after_the_hourly_listing(world):
    run = start_run(world)
    world.sagemaker_event(training_state_event(run["job"], "Completed"))
    world.write_conversion_output(run["version"], 0.9)
    world.sagemaker_event(processing_state_event(run["job"] + "-convert", "Completed"))
    # A photo lands, but S3's notification never reaches the queue.
    world.aws.s3.put_object(Bucket=world.aws.dataset_bucket, Key=world.aws.prefix + "daisy/lost.jpg", Body=b"photo")
    listings = []
    objects = services.get().orchestrator.objects
    original = objects.list
    objects.list = lambda uri: listings.append(uri) or original(uri)  # type: ignore[method-assign]
    healed = None
    for _ in range(30):  # ticks every minute for half an hour: at most one listing
        world.now += 60
        answer = world.tick()
        healed = healed or (answer if answer["action"] == "healed" else None)
    assert healed is None and len(listings) <= 1
    world.now += 3600
    healed = world.tick()
    assert healed["action"] == "healed" and healed["version"] != run["version"]
    world.now += 601
    started = world.tick()
    assert started["action"] == "started" and started["version"] == healed["version"]
    # Once trained, the listing matches the last run: nothing more is healed.
    world.sagemaker_event(training_state_event(started["job"], "Failed", reason="AlgorithmError: x"))
    world.now += 7200
    assert world.tick()["action"] == "idle"
