"""The upload function's SQS batches (moto): a partial batch response returns only the messages that
could not be recorded to the queue, and a malformed body is dropped with a metric, not only a log line."""
from __future__ import annotations

import json

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib import services
from pipeline_fixtures import aws, s3_body, s3_record, sqs_event  # noqa: F401  (fixture)


@pytest.fixture
def client(aws):  # noqa: F811
    with Client(chalice_app.app) as client:
        yield client


def upload_bodies(aws_world, keys):  # noqa: F811
    return [s3_body(s3_record(aws_world.dataset_bucket, aws_world.prefix + key, 1_700_000_000.0 + i))
            for i, key in enumerate(keys)]


def emf_metrics(out: str) -> dict[str, float]:
    """The metrics Powertools printed (CloudWatch embedded metric format), summed by name."""
    found: dict[str, float] = {}
    for line in out.splitlines():
        if line.startswith('{"_aws"'):
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    values = document[metric["Name"]]
                    found[metric["Name"]] = found.get(metric["Name"], 0) + sum(values if isinstance(values, list) else [values])
    return found


def test_only_the_message_that_failed_to_record_returns_to_the_queue(aws, client, monkeypatch, capsys):  # noqa: F811
    state = services.get().orchestrator.state
    record_changes = state.record_changes
    calls = []

    def flaky(dataset, changes):  # the state store fails for one upload (a throttled or broken write)
        calls.append(len(changes))
        if any(change.key.endswith("roses/b.jpg") for change in changes):
            raise RuntimeError("ProvisionedThroughputExceededException")
        return record_changes(dataset, changes)

    monkeypatch.setattr(state, "record_changes", flaky)
    event = sqs_event(upload_bodies(aws, ["daisy/a.jpg", "roses/b.jpg", "tulips/c.jpg"]))
    answer = client.lambda_.invoke("on_upload", event).payload
    failed_id = event["Records"][1]["messageId"]
    assert answer["batchItemFailures"] == [{"itemIdentifier": failed_id}]
    assert answer["new"] == 2 and calls == [3, 1, 1, 1]  # the batch at once, then message by message
    assert services.get().orchestrator.dataset_state().pending_changes == 2
    assert emf_metrics(capsys.readouterr().out)["UploadMessagesRetried"] == 1

    # SQS delivers the returned message again; now it is recorded, and the others never counted twice.
    monkeypatch.setattr(state, "record_changes", record_changes)
    again = sqs_event([event["Records"][1]["body"], event["Records"][0]["body"]])
    answer = client.lambda_.invoke("on_upload", again).payload
    assert answer["batchItemFailures"] == [] and answer["new"] == 1
    assert services.get().orchestrator.dataset_state().pending_changes == 3


def test_a_batch_recorded_at_once_reports_no_failures(aws, client):  # noqa: F811
    answer = client.lambda_.invoke("on_upload", sqs_event(upload_bodies(aws, ["daisy/a.jpg", "roses/b.jpg"]))).payload
    assert answer["batchItemFailures"] == [] and answer["new"] == 2 and answer["malformed"] == 0


def test_a_malformed_body_is_dropped_and_counted_in_a_metric(aws, client, capsys, caplog):  # noqa: F811
    bodies = ["this is not JSON", json.dumps({"no": "Records"})] + upload_bodies(aws, ["daisy/a.jpg"])
    answer = client.lambda_.invoke("on_upload", sqs_event(bodies)).payload
    assert answer["batchItemFailures"] == []  # retrying a malformed body cannot help: it is not returned
    assert answer["malformed"] == 2 and answer["new"] == 1
    assert emf_metrics(capsys.readouterr().out)["MalformedUploadMessages"] == 2
    assert [r.getMessage() for r in caplog.records].count("upload message dropped") == 2
