"""Domain events (chalicelib/pipeline/domain_events.py) published after the state change to an EventBridge bus
(moto, read back through a rule into an SQS queue) and, locally, to HOME/events.jsonl under concurrent writers.
Built without AWS: tests/unit/test_domain_events.py; a real `flowers up`, read with `flowers events`:
tests/e2e/test_domain_events_up.py."""
from __future__ import annotations

import json
import threading

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.pipeline import domain_events as domain
from chalicelib import services
from chalicelib.adapters.local.event_log import EventLog
from flowers_cli.events import read_from
from pipeline_fixtures import REGION, aws, processing_state_event, training_state_event  # noqa: F401  (aws: fixture)
from test_pipeline_aws import World

BUS = "flowers-events"


def test_the_local_log_holds_whole_lines_under_concurrent_writers(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    events = [domain.run_failed("b/p/", f"{i:016x}", f"job-{i}", "x" * 5000, float(i), []) for i in range(40)]
    threads = [threading.Thread(target=log.publish, args=([e],)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    read, offset = read_from(log.path, 0)
    assert sorted(e["id"] for e in read) == sorted(e.id for e in events) and offset == log.path.stat().st_size
    with open(log.path, "ab") as handle:
        handle.write(b'{"id": "half a li')  # a line being written is left for the next read
    assert read_from(log.path, offset) == ([], offset)


# cloud: EventBridge (moto) --------------------------------------------------------------------
@pytest.fixture
def world(aws, monkeypatch):  # noqa: F811
    """The pipeline with the stack's bus, and a rule sending every flowers event to a queue the test reads."""
    import boto3

    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    services.reset()
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name=BUS)
    queue = sqs.create_queue(QueueName="flowers-events-seen")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="everything", EventBusName=BUS, EventPattern=json.dumps({"source": ["flowers"]}))
    events.put_targets(Rule="everything", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": arn}])
    with Client(chalice_app.app) as client:
        w = World(aws, client)
        w.seen = lambda: _drain(sqs, queue)
        yield w


def _drain(sqs, queue) -> list[dict]:
    seen = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return seen
        for message in messages:
            seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def test_runs_and_models_publish_their_events_to_the_bus(world):
    world.upload(["daisy/a.jpg", "roses/b.jpg"])
    world.now += 601
    first = world.tick()
    failed = world.sagemaker_event(training_state_event(first["job"], "Failed", reason="AlgorithmError: too few images"))
    assert failed["action"] == "failed"
    world.sagemaker_event(training_state_event(first["job"], "Failed", reason="AlgorithmError: too few images"))  # replay
    seen = world.seen()
    assert [(e["source"], e["detail-type"]) for e in seen] == [("flowers", "Run Started"), ("flowers", "Run Failed")]
    started, failure = (e["detail"] for e in seen)
    assert started["version"] == first["version"] and started["training_job"] == first["job"] and started["attempt"] == 1
    assert "AlgorithmError: too few images" in failure["reason"] and failure["id"] != started["id"]

    # A model: registered (the gate approved it) and promoted; replays publish nothing more.
    world.upload(["daisy/c.jpg"])
    world.now += 601
    second = world.tick()
    v1, done = world.finish_run(accuracy=0.91)
    assert done["model_status"] == "approved"
    world.sagemaker_event(processing_state_event(second["job"] + "-convert", "Completed"))
    seen = [e["detail"] for e in world.seen()]
    assert [e["type"] for e in seen] == ["Run Started", "Model Registered", "Model Promoted"]
    assert seen[1]["status"] == "approved" and seen[1]["test_accuracy"] == pytest.approx(0.91) and seen[1]["version"] == v1
    assert seen[2]["version"] == v1 and seen[2]["previous"] is None

    # A model the gate leaves for a person, approved by hand (promoted), then rolled back.
    world.upload(["daisy/d.jpg"])
    world.now += 601
    world.tick()
    v2, done = world.finish_run(accuracy=0.5)
    assert done["model_status"] == "pending"
    operator = {"Content-Type": "application/json"}
    assert world.client.http.post(f"/models/{v2}/approve", headers=operator, body=b"{}").status_code == 200
    assert world.client.http.post(f"/models/{v2}/approve", headers=operator, body=b"{}").status_code == 200  # no change: no event
    assert world.client.http.post("/models/rollback", headers=operator, body=b'{"reason": "bad on phones"}').status_code == 200
    seen = [e["detail"] for e in world.seen()]
    assert [e["type"] for e in seen] == ["Run Started", "Model Registered", "Model Promoted", "Model Rolled Back"]
    assert seen[1]["status"] == "pending" and seen[2]["previous"] == v1 and seen[2]["version"] == v2
    assert (seen[3]["rejected"], seen[3]["version"], seen[3]["reason"]) == (v2, v1, "bad on phones")


def test_a_bus_that_refuses_never_undoes_the_state_change(world, monkeypatch):
    from chalicelib.adapters.aws.eventbridge_events import EventBridgePublisher

    def refuse(self, events):
        raise RuntimeError("EventBridge is down")

    monkeypatch.setattr(EventBridgePublisher, "publish", refuse)
    world.upload(["daisy/a.jpg"])
    world.now += 601
    started = world.tick()
    assert started["action"] == "started" and world.status()["running_job"]["stage"] == "training"
    assert world.seen() == []


def test_no_bus_configured_publishes_nothing(aws, monkeypatch):  # noqa: F811
    from chalicelib.ports import NoEvents

    monkeypatch.delenv("EVENT_BUS_NAME", raising=False)
    services.reset()
    assert isinstance(services.get().events, NoEvents)
