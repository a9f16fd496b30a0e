"""The training job's validation report (`validation.json`) as GET /status shows it.

The training image writes validation.json to `$SM_OUTPUT_DATA_DIR`: every file it skipped
(while scanning: no label, empty file, duplicates; while decoding: not an image, truncated,
too large) with a reason code and a detail, plus what it used. Local mode reads the file from
the job's folder. In the cloud SageMaker packs that folder into `output.tar.gz` at the end of
the job, under the job's output path: s3://ARTIFACT_BUCKET/training/<job>/output/output.tar.gz
(chalicelib/contract/bucket_layout.py). The API function reads that archive (`ArchivedReports`; a few
KB: TensorBoard logs go to their own S3 path) and remembers each job's report, since a finished
job's archive never changes. Why this way: the
job's own output is already where the API can read it, so neither the training image, nor the
job requests, nor the conversion job has to copy or store anything, and a run whose training
failed on its data (and so never reaches a conversion) still has its report. A job without an
archive (still running, or stopped before SageMaker's upload) has no report: /status shows the
other job it looks at (the running job's report, else the last run's), or none.
"""
from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
from collections import OrderedDict
from typing import Any, Callable

from chalicelib.contract import bucket_layout
from chalicelib.contract import training_job as contract
from chalicelib.observability import logger
from chalicelib.ports import ObjectStore

MAX_LISTED = 200  # skipped (and ignored) files listed in /status; the counts cover them all
MAX_DETAIL = 300  # characters of one file's detail (a conflict names every copy)
MAX_LABEL_ISSUES = 50  # likely mislabelled photos listed in /status, most likely first; `count` covers them all
MAX_REPORT_BYTES = 64 << 20  # validation.json read from an archive, at most
_CACHED_JOBS = 4  # /status asks for two: the running job's and the last outcome's


def from_archive(data: bytes) -> dict[str, Any] | None:
    """validation.json out of a job's output.tar.gz; None when the archive has none (or is unreadable)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive:
                if member.isfile() and member.name.lstrip("./") == contract.VALIDATION_REPORT:
                    if member.size > MAX_REPORT_BYTES:
                        return None
                    handle = archive.extractfile(member)
                    report = json.loads(handle.read()) if handle else None
                    return report if isinstance(report, dict) else None
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, OSError, ValueError):
        return None
    return None


class ReportCache:
    """Each job's report, read once per process while it is found (a finished job's report never
    changes); a job without one yet (still running) is asked again next time."""

    def __init__(self, size: int = _CACHED_JOBS):
        self._size = size
        self._reports: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, training_job: str, read: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        with self._lock:
            if training_job in self._reports:
                self._reports.move_to_end(training_job)
                return self._reports[training_job]
        report = read()
        if report is not None:
            with self._lock:
                self._reports[training_job] = report
                while len(self._reports) > self._size:
                    self._reports.popitem(last=False)
        return report


class ArchivedReports:
    """The cloud's reports (chalicelib/ports.ValidationReports): inside the output.tar.gz SageMaker uploads at a
    training job's end, so a job still training has none yet."""

    while_training = False

    def __init__(self, objects: ObjectStore, artifact_bucket: str):
        self._objects = objects
        self._bucket = artifact_bucket
        self._cache = ReportCache()  # a finished job's validation.json never changes

    def validation_report(self, training_job: str) -> dict[str, Any] | None:
        uri = bucket_layout.output_archive(self._bucket, training_job)
        return self._cache.get(training_job, lambda: read_archive(self._objects.read, uri) if self._found(uri) else None)

    def _found(self, uri: str) -> bool:
        """Is the archive there yet (a job still training has none)? Asked by listing, which the API's role may do
        for these keys: a GetObject of a missing key is a 403, not a 404, to a role that may not list the bucket."""
        try:
            return self._objects.exists(uri)
        except Exception as exc:  # GET /status answers without the report; the refusal is logged, never hidden
            logger.warning("validation report unreadable", extra={"uri": uri, "error": f"{type(exc).__name__}: {exc}"})
            return False


def summary(report: dict[str, Any], training_job: str, limit: int = MAX_LISTED) -> dict[str, Any]:
    """The report's shape in GET /status (openapi.py, "Validation"): counts of everything, the first
    `limit` skipped and ignored files, and how many more there are; the likely mislabelled photos and the
    class balance."""
    skipped = [s for s in report.get("skipped") or [] if isinstance(s, dict)]
    ignored = [str(f) for f in report.get("ignored_files") or []]
    by_reason: dict[str, int] = {}
    for item in skipped:
        reason = str(item.get("reason", ""))
        by_reason[reason] = by_reason.get(reason, 0) + 1
    return {
        "training_job": training_job,
        "dataset_version": str(report.get("dataset_version") or ""),
        "layout": str(report.get("layout") or ""),
        "usable_images": int(report.get("usable_images") or 0),
        "skipped_count": len(skipped),
        "skipped_by_reason": dict(sorted(by_reason.items())),
        "skipped": [{"file": str(s.get("path", "")), "reason": str(s.get("reason", "")),
                     "detail": str(s.get("detail", ""))[:MAX_DETAIL]} for s in skipped[:limit]],
        "skipped_not_listed": max(0, len(skipped) - limit),
        "ignored_count": len(ignored),
        "ignored_files": ignored[:limit],
        "ignored_not_listed": max(0, len(ignored) - limit),
        "label_issues": label_issues(report.get("label_issues")),
        "class_balance": class_balance(report.get("class_balance")),
    }


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def label_issues(found: Any, limit: int = MAX_LABEL_ISSUES) -> dict[str, Any] | None:
    """The training job's likely mislabelled photos (training/label_issues.py), most likely first: each with
    its given label, the suggested one and the confidence in it. None for a report without them (older jobs)."""
    if not isinstance(found, dict):
        return None
    raw = found.get("issues")
    issues = [i for i in raw if isinstance(i, dict)] if isinstance(raw, list) else []
    count = found.get("count")
    count = count if isinstance(count, int) and not isinstance(count, bool) and count >= len(issues) else len(issues)
    return {
        "count": count,
        "photos": int(_number(found.get("photos"))),
        "issues": [{"file": str(i.get("file", "")), "given": str(i.get("given", "")), "suggested": str(i.get("suggested", "")),
                    "confidence": min(1.0, max(0.0, _number(i.get("confidence"))))} for i in issues[:limit]],
        "not_listed": count - min(limit, len(issues)),
        "skipped": str(found["skipped"]) if found.get("skipped") else None,
    }


def class_balance(balance: Any) -> dict[str, Any] | None:
    """Whether the classes were weighted (training/class_balance.py) and a warning per class under the minimum."""
    if not isinstance(balance, dict):
        return None
    weights = balance.get("class_weights")
    return {
        "status": str(balance.get("status") or ""),
        "largest_to_smallest": _number(balance.get("largest_to_smallest")),
        "class_weights": {str(k): _number(v) for k, v in weights.items()} if isinstance(weights, dict) else None,
        "min_recommended": int(_number(balance.get("min_recommended"))),
        "warnings": [w for w in warnings if isinstance(w, str)] if isinstance(warnings := balance.get("warnings"), list) else [],
    }


def read_archive(read: Callable[[str], bytes], uri: str) -> dict[str, Any] | None:
    """The report inside the archive at `uri` (ObjectStore.read), None when there is none yet.
    Never raises for a missing or unreadable archive: GET /status must answer without it."""
    try:
        data = read(uri)
    except Exception as exc:  # botocore's NoSuchKey / ClientError, a local FileNotFoundError, or worse: logged
        response = getattr(exc, "response", None)
        code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
        # A job that never started, or stopped before SageMaker's upload, has no archive (ArchivedReports lists it
        # first; gone since: NoSuchKey). A refusal (AccessDenied) is logged: it is the role's, not the job's.
        if not (isinstance(exc, FileNotFoundError) or type(exc).__name__ == "NoSuchKey" or code in ("NoSuchKey", "404")):
            logger.warning("validation report unreadable", extra={"uri": uri, "error": f"{type(exc).__name__}: {exc}"})
        return None
    report = from_archive(data)
    if report is None:
        logger.warning("validation report missing from the job's output", extra={"uri": uri, "bytes": len(data)})
    return report
