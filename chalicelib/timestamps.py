"""Moments as the pipeline writes and reads them: epoch seconds inside, ISO 8601 text outside."""
from __future__ import annotations

from datetime import datetime, timezone


def iso(epoch: float) -> str:
    """What the API shows: seconds, UTC offset; "" for an unknown moment (0)."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds") if epoch else ""


def event_time(epoch: float) -> str:
    """How AWS writes an event's time: milliseconds and a Z (S3 notifications' eventTime)."""
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch(value: object) -> float:
    """Epoch seconds from ISO text, a datetime (boto3's) or a number; 0.0 when it is none of these."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    try:
        return float(value)  # type: ignore[arg-type]  # anything float() takes; the rest is unknown
    except (TypeError, ValueError):
        return 0.0
