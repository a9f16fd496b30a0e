"""The documented AWS event shapes, built here once: local mode feeds them to the Lambdas' own
handlers, and the tests build theirs with the same functions.

- an upload: an S3 event notification (message structure 2.1), as S3 puts it into an SQS
  message body, in the SQS batch the `on_upload` function receives;
- S3's test event, sent once when a notification is configured;
- the tick: EventBridge's "Scheduled Event";
- a job's state change: SageMaker's training and processing job state-change events (SageMakerDetailType).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from typing import Any
from urllib.parse import quote_plus

from chalicelib.contract.vocabulary import EventSource, JobState, SageMakerDetailType
from chalicelib.timestamps import event_time

REGION = "local"
ACCOUNT = "000000000000"
UPLOAD_QUEUE = "flowers-uploads"
_EVENT_NAMES = {"created": "ObjectCreated:Put", "removed": "ObjectRemoved:Delete"}
# SecondaryStatus: for a job that ended, the same word as its status; else "Training"
_ENDED = (JobState.COMPLETED, JobState.FAILED, JobState.STOPPED)
_sequencer = itertools.count(1)

Event = dict[str, Any]


def s3_record(bucket: str, key: str, kind: str = "created", etag: str = "0123456789abcdef0123456789abcdef", size: int = 1024,
              sequencer: str = "", at: float = 0.0, *, region: str = REGION) -> Event:
    """One record of an S3 event notification; `kind` is "created" or "removed"."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": sequencer or f"{next(_sequencer):016X}"}
    if kind == "created":
        obj.update({"size": size, "eTag": etag})
    request_id = obj["sequencer"][-16:]
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region, "eventTime": event_time(at),
        "eventName": _EVENT_NAMES[kind], "userIdentity": {"principalId": "local"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": "local"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "flowers-uploads",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "local"}, "arn": f"arn:aws:s3:::{bucket}"},
               "object": obj},
    }


def s3_notification(*records: Event) -> str:
    """The SQS message body S3 sends: one notification holding its records (S3 sends one each)."""
    return json.dumps({"Records": list(records)})


def s3_test_event(bucket: str, at: float = 0.0) -> str:
    """The message S3 sends once when the notification is configured (no Records)."""
    return json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": event_time(at), "Bucket": bucket,
                       "RequestId": uuid.uuid4().hex[:16].upper(), "HostId": "local"})


def sqs_event(bodies: list[str], queue: str = UPLOAD_QUEUE, *, region: str = REGION, account: str = ACCOUNT) -> Event:
    """One SQS batch as Lambda's event source mapping delivers it: a record per message body."""
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "local", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "local",
                       "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {}, "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:{region}:{account}:{queue}", "awsRegion": region,
    } for body in bodies]}


def scheduled_event(now: float, *, region: str = REGION, account: str = ACCOUNT) -> Event:
    return _eventbridge("Scheduled Event", "aws.events", {}, f"arn:aws:events:{region}:{account}:rule/flowers-tick", now,
                        region, account)


def training_state(name: str, status: str, model_uri: str = "", reason: str = "", now: float = 0.0, *,
                   region: str = REGION, account: str = ACCOUNT) -> Event:
    arn = f"arn:aws:sagemaker:{region}:{account}:training-job/{name}"
    detail: dict[str, Any] = {"TrainingJobName": name, "TrainingJobArn": arn, "TrainingJobStatus": status,
                              "SecondaryStatus": status if status in _ENDED else "Training",
                              "ModelArtifacts": {"S3ModelArtifacts": model_uri}, "CreationTime": int(now * 1000), "Tags": {}}
    if reason:
        detail["FailureReason"] = reason
    return _eventbridge(SageMakerDetailType.TRAINING_JOB_STATE_CHANGE, EventSource.SAGEMAKER, detail, arn, now, region, account)


def processing_state(name: str, status: str, reason: str = "", now: float = 0.0, *,
                     region: str = REGION, account: str = ACCOUNT) -> Event:
    arn = f"arn:aws:sagemaker:{region}:{account}:processing-job/{name}"
    detail: dict[str, Any] = {"ProcessingJobName": name, "ProcessingJobArn": arn, "ProcessingJobStatus": status,
                              "CreationTime": int(now * 1000), "Tags": {}}
    if reason:
        detail["FailureReason"] = detail["ExitMessage"] = reason
    return _eventbridge(SageMakerDetailType.PROCESSING_JOB_STATE_CHANGE, EventSource.SAGEMAKER, detail, arn, now, region, account)


def _eventbridge(detail_type: str, source: str, detail: dict[str, Any], resource: str, now: float,
                 region: str, account: str) -> Event:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source, "account": account,
            "time": event_time(now)[:19] + "Z", "region": region, "resources": [resource], "detail": detail}
