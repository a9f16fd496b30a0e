"""The Lambdas check their remaining time (chalicelib/pipeline/deadline.py), on moto through the deployed handlers with
a Lambda context whose time runs out mid-work: the upload function answers what it did not get to as batchItemFailures
(SQS delivers those again) and what it finished never is; the tick leaves a run it has no time to start to the next
tick. Nothing is lost: redelivered, every upload is recorded once and every photo under classify/ has its line."""
from __future__ import annotations

import hashlib
import json

import app as chalice_app
from chalicelib import services
from chalicelib.pipeline.deadline import MARGIN_SECONDS
from pipeline_fixtures import aws, s3_body, s3_record, sqs_event  # noqa: F401  (aws: fixture)

TICK = {"version": "0", "id": "tick", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "time": "2024-01-01T00:00:00Z", "region": "us-east-1", "resources": [], "detail": {}}
ROOMY, SHORT = 60_000, int(MARGIN_SECONDS * 1000) - 1  # ms left: plenty; less than the margin


class Context:
    """A Lambda runtime's context whose remaining time falls below the margin after `steps` questions."""

    def __init__(self, steps: int):
        self.steps = steps
        self.asked = 0

    def get_remaining_time_in_millis(self) -> int:
        self.asked += 1
        return ROOMY if self.asked <= self.steps else SHORT


def invoke(function: str, event: dict, context: Context) -> dict:
    """As Lambda calls it: the handler with the event and the runtime's context."""
    return chalice_app.app.handler_map[function](event, context)


def deliver(aws, keys, context):  # noqa: F811
    """Put the objects and deliver one notification each (one SQS message each); answers (event, answer)."""
    records = []
    for key in keys:
        body = f"bytes of {key}".encode()
        aws.s3.put_object(Bucket=aws.dataset_bucket, Key=key, Body=body)
        records.append(s3_record(aws.dataset_bucket, key, 1_700_000_000.0, etag=hashlib.md5(body).hexdigest()))
    event = sqs_event([s3_body(r) for r in records])
    return event, invoke("on_upload", event, context)


def failures(answer):
    return [f["itemIdentifier"] for f in answer["batchItemFailures"]]


def redeliver(event, answer, context):
    """What SQS does with a partial batch response: the messages named in it, again."""
    returned = set(failures(answer))
    return invoke("on_upload", {"Records": [r for r in event["Records"] if r["messageId"] in returned]}, context)


def lines(aws):  # noqa: F811
    found = []
    for listed in aws.s3.list_objects_v2(Bucket=aws.dataset_bucket, Prefix="predictions/").get("Contents", []):
        raw = aws.s3.get_object(Bucket=aws.dataset_bucket, Key=listed["Key"])["Body"].read().decode()
        found += [json.loads(line) for line in raw.splitlines()]
    return found


def test_a_classify_batch_cut_short_hands_back_the_photos_it_did_not_start(aws):  # noqa: F811
    keys = [f"classify/p{i}.jpg" for i in range(5)] + [aws.prefix + "roses/a.jpg"]
    event, answer = deliver(aws, keys, Context(steps=2))  # two photos, then the time is short
    photo_messages = [r["messageId"] for r in event["Records"][:5]]
    assert failures(answer) == photo_messages[2:]  # sorted by key: p0 and p1 done, the rest handed back
    assert answer["classified"] == {"action": "classified", "photos": 2, "output": answer["classified"]["output"],
                                    "errors": 2, "deferred": 3}  # errors: no model approved yet, and the lines say so
    assert answer["new"] == 1  # the data set's upload was recorded: not a failure
    assert sorted(line["key"] for line in lines(aws)) == ["classify/p0.jpg", "classify/p1.jpg"]

    again = redeliver(event, answer, Context(steps=1000))
    assert failures(again) == [] and again["classified"]["photos"] == 3 and again["new"] == 0
    assert sorted(line["key"] for line in lines(aws)) == sorted(keys[:5])  # each photo once, none lost
    # The first output, delivered again (an SQS duplicate of its messages), is found, not written twice.
    done = invoke("on_upload", {"Records": event["Records"][:2]}, Context(steps=1000))
    assert done["classified"]["action"] == "done_before" and len(lines(aws)) == 5


def test_with_no_time_left_for_any_photo_the_whole_batch_comes_back(aws):  # noqa: F811
    event, answer = deliver(aws, ["classify/a.jpg", "classify/b.jpg"], Context(steps=0))
    assert answer["classified"] == {"action": "deferred", "photos": 2} and len(failures(answer)) == 2 and lines(aws) == []


def test_uploads_recorded_message_by_message_stop_when_the_time_runs_short(aws, monkeypatch):  # noqa: F811
    state = services.get().orchestrator.state
    record_changes = state.record_changes
    monkeypatch.setattr(state, "record_changes", lambda dataset, changes: (
        record_changes(dataset, changes) if len(changes) == 1 else (_ for _ in ()).throw(RuntimeError("throttled"))))
    keys = [f"{aws.prefix}daisy/{i}.jpg" for i in range(4)]
    event, answer = deliver(aws, keys, Context(steps=2))  # the batch at once fails; two messages, then time is short
    assert failures(answer) == [r["messageId"] for r in event["Records"][2:]] and answer["new"] == 2

    again = redeliver(event, answer, Context(steps=1000))
    assert failures(again) == [] and again["new"] == 2
    assert services.get().orchestrator.dataset_state().pending_changes == 4  # every upload once


def test_a_tick_with_no_time_left_after_listing_leaves_the_run_to_the_next_tick(aws):  # noqa: F811
    deliver(aws, [aws.prefix + "daisy/a.jpg", aws.prefix + "roses/b.jpg"], Context(steps=1000))
    orchestrator = services.get().orchestrator
    now = 1_700_000_000.0 + 601
    orchestrator.clock = lambda: now
    deferred = invoke("tick", TICK, Context(steps=0))
    assert deferred["action"] == "deferred" and "the next tick starts the run" in deferred["reason"]
    assert aws.sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
    assert orchestrator.dataset_state().pending_changes == 2 and orchestrator.dataset_state().running is None
    assert invoke("tick", TICK, Context(steps=1000))["action"] == "started"


def test_chalice_s_own_context_sets_no_deadline(aws):  # noqa: F811
    """flowers up and chalice.test pass chalice.local.LambdaContext (a made-up 3 s limit): no deadline, nothing deferred."""
    from chalice.local import LambdaContext

    spent = LambdaContext("on_upload", memory_size=1024, max_runtime_ms=0)  # no time left, were it a deadline
    event, answer = deliver(aws, [f"classify/p{i}.jpg" for i in range(3)] + [aws.prefix + "daisy/a.jpg"], spent)  # type: ignore[arg-type]
    assert failures(answer) == [] and len(lines(aws)) == 3 and answer["new"] == 1
    services.get().orchestrator.clock = lambda: 1_700_000_000.0 + 601
    assert invoke("tick", TICK, spent)["action"] == "started"  # type: ignore[arg-type]
