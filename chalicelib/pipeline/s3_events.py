"""S3 event notifications delivered through SQS, turned into data set changes.

S3 -> SQS (not Chalice's on_s3_event, which `chalice package` and so the CDK cannot wire)
batches bursts into few invocations and gives failed batches a dead-letter queue. Each SQS
body holds one S3 notification document ({"Records": [...]}), S3's one-off s3:TestEvent
when the notification is configured, or the same document wrapped by SNS when the bucket
fans out. A body that is none of these is logged and dropped: retrying it cannot help.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event

from chalicelib.pipeline.dataset_version import is_relevant
from chalicelib.pipeline.records import Change
from chalicelib.timestamps import epoch


@dataclass
class Parsed:
    changes: list[Change] = field(default_factory=list)
    test_events: int = 0
    ignored: int = 0  # other buckets, other prefixes, other event types
    malformed: list[str] = field(default_factory=list)  # why each bad body was dropped


def _kind(event_name: str) -> str:
    if event_name.startswith("ObjectCreated:"):
        return "created"
    if event_name.startswith(("ObjectRemoved:", "LifecycleExpiration:Delete")):
        return "removed"
    return ""


def change_id(bucket: str, key: str, kind: str, sequencer: str, version_id: str, etag: str, event_time: str) -> str:
    """Same event delivered twice -> same id. S3's sequencer orders events on one key and is
    unique per event, so it (with the key) identifies the event; older shapes lack it."""
    basis = "\t".join((bucket, key, kind, sequencer or f"{etag}@{event_time}", version_id or ""))
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def _document(body: str) -> dict[str, Any] | None:
    document = json.loads(body)
    if isinstance(document, dict) and document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        document = json.loads(document["Message"])  # SNS envelope
    return document if isinstance(document, dict) else None


def parse_bodies(bodies: Iterable[str], bucket: str, prefix: str) -> Parsed:
    parsed = Parsed()
    for body in bodies:
        try:
            document = _document(body)
        except (TypeError, ValueError) as exc:
            parsed.malformed.append(f"not JSON: {exc}")
            continue
        if document is None:
            parsed.malformed.append("not a JSON object")
            continue
        if document.get("Event") == "s3:TestEvent":
            parsed.test_events += 1
            continue
        if not isinstance(document.get("Records"), list):
            parsed.malformed.append("no Records list")
            continue
        for record in S3Event(document).records:
            try:
                kind = _kind(record.event_name)
                obj = record.s3.get_object
                record_bucket = record.s3.bucket.name
                key = unquote_plus(obj.key)  # S3 URL-encodes keys in notifications
                if not kind or record_bucket != bucket or not is_relevant(key, prefix):
                    parsed.ignored += 1
                    continue
                parsed.changes.append(Change(
                    change_id=change_id(record_bucket, key, kind, obj.get("sequencer") or "", obj.version_id or "",
                                        obj.etag, record.event_time),
                    key=key,
                    kind=kind,
                    event_time=epoch(record.event_time),
                ))
            except (KeyError, TypeError, AttributeError) as exc:
                parsed.malformed.append(f"bad record: {type(exc).__name__}: {exc}")
    return parsed
