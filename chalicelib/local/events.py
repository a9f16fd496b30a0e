"""The documented AWS event shapes, built locally, so local mode feeds the Lambdas' own handlers.

- an upload: an S3 event notification (message structure 2.1) in an SQS record, as the
  `on_upload` function receives it from the flowers-uploads queue;
- the tick: EventBridge's "Scheduled Event";
- a job's exit: "SageMaker Training Job State Change" / "SageMaker Processing Job State Change".
"""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from urllib.parse import quote_plus

REGION = "local"
ACCOUNT = "000000000000"


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def s3_record(bucket: str, key: str, kind: str, etag: str, size: int, sequencer: str, event_time: float) -> dict:
    obj = {"key": quote_plus(key, safe="/"), "sequencer": sequencer}
    if kind == "created":
        obj.update({"size": size, "eTag": etag})
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION, "eventTime": _iso(event_time),
        "eventName": "ObjectCreated:Put" if kind == "created" else "ObjectRemoved:Delete",
        "userIdentity": {"principalId": "local"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": sequencer[-16:], "x-amz-id-2": "local"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "flowers-uploads",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "local"}, "arn": f"arn:aws:s3:::{bucket}"},
               "object": obj},
    }


def sqs_event(records: list[dict], queue: str = "flowers-uploads") -> dict:
    """One SQS message per S3 notification (as S3 sends them), in one batch."""
    messages = []
    for record in records:
        body = json.dumps({"Records": [record]})
        messages.append({
            "messageId": str(uuid.uuid4()), "receiptHandle": "local", "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "local",
                           "ApproximateFirstReceiveTimestamp": "0"},
            "messageAttributes": {}, "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}", "awsRegion": REGION,
        })
    return {"Records": messages}


def scheduled_event(now: float) -> dict:
    return _eventbridge("Scheduled Event", "aws.events", {}, [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/flowers-tick"], now)


def training_state(name: str, status: str, model_uri: str, reason: str, now: float) -> dict:
    detail = {"TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
              "TrainingJobStatus": status, "SecondaryStatus": status, "ModelArtifacts": {"S3ModelArtifacts": model_uri}}
    if reason:
        detail["FailureReason"] = reason
    return _eventbridge("SageMaker Training Job State Change", "aws.sagemaker", detail,
                        [detail["TrainingJobArn"]], now)


def processing_state(name: str, status: str, reason: str, now: float) -> dict:
    detail = {"ProcessingJobName": name, "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}",
              "ProcessingJobStatus": status}
    if reason:
        detail["FailureReason"] = detail["ExitMessage"] = reason
    return _eventbridge("SageMaker Processing Job State Change", "aws.sagemaker", detail, [detail["ProcessingJobArn"]], now)


def _eventbridge(detail_type: str, source: str, detail: dict, resources: list[str], now: float) -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source, "account": ACCOUNT,
            "time": _iso(now)[:19] + "Z", "region": REGION, "resources": resources, "detail": detail}
