"""What each Lambda does, between the Chalice decorators in app.py and the pipeline.

Events are read with Powertools' event source data classes. HTTP functions return plain
dicts or raise ApiError; app.py turns both into responses.
"""
from __future__ import annotations

import getpass
import os
import time
from typing import Any, Mapping

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, SQSEvent

from chalicelib.pipeline import batch_classify, deadline, job_names

from chalicelib.api import operator_request, predict_request

from chalicelib import services
from chalicelib.api.errors import ApiError, conflict, not_found, unavailable
from chalicelib.contract.imaging import ImageError
from chalicelib.contract.vocabulary import Action, Mode, SageMakerDetailType
from chalicelib.observability import Unit, logger, metrics
from chalicelib.pipeline.actors import Actor
from chalicelib.pipeline.refusals import Conflict, NotFound
from chalicelib.pipeline.records import JobStatus
from chalicelib.pipeline.run_result import RunResult
from chalicelib.pipeline.s3_events import parse_bodies
from chalicelib.pipeline.model_rows import public_rows
from chalicelib.pipeline.status_summary import summary as status_summary_of
from chalicelib.timestamps import iso

# ImageError.reason -> (status, code). Everything else about a bad image is a 400.
_IMAGE_ERRORS = {"decompression_bomb": 413, "image_too_large": 413, "unsupported_image_type": 415}


# events -----------------------------------------------------------------------------------
def on_upload_messages(raw_event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
    """Record a batch of upload notifications; answer SQS's partial batch response.

    The batch is recorded at once; when that fails, message by message, and only the messages
    whose changes could not be recorded go back to the queue (`batchItemFailures`; the event
    source mapping has ReportBatchItemFailures): recording is idempotent, so what the first try
    wrote counts once. A malformed body is dropped (retrying cannot help) and counted in the
    MalformedUploadMessages metric, which has an alarm. Once the Lambda's time runs short (`context`,
    chalicelib/pipeline/deadline.py) no further message or photo is started: those left go back too."""
    svc = services.get()
    time_left = deadline.of(context)
    event = SQSEvent(dict(raw_event))
    bucket, prefix = svc.settings.dataset_bucket, svc.settings.dataset_prefix
    messages = [(record.message_id, parse_bodies([record.body], bucket, prefix)) for record in event.records]
    malformed = 0
    for message_id, parsed in messages:
        for problem in parsed.malformed:
            logger.warning("upload message dropped", extra={"problem": problem, "message_id": message_id})
        malformed += bool(parsed.malformed)
    changes = [change for _, parsed in messages for change in parsed.changes]
    failed: list[str] = []
    try:
        new = svc.orchestrator.record_uploads(changes)
    except Exception:
        logger.exception("recording the upload batch failed: recording it message by message")
        new = 0
        for message_id, parsed in messages:
            if not parsed.changes:
                continue
            if time_left.passed():
                failed.append(message_id)
                continue
            try:
                new += svc.orchestrator.record_uploads(parsed.changes)
            except Exception as exc:
                logger.warning("upload message returned to the queue",
                               extra={"message_id": message_id, "error": f"{type(exc).__name__}: {exc}"})
                failed.append(message_id)
    # Photos under classify/: classified by the served model, one output per delivery (chalicelib/pipeline/batch_classify.py).
    classified, returned = batch_classify.on_messages([(r.message_id, r.body) for r in event.records], svc.objects, bucket,
                                                      lambda: svc.predictor, time_left=time_left)
    failed += [message_id for message_id in returned if message_id not in failed]
    metrics.add_metric(name="UploadEvents", unit=Unit.Count, value=len(changes))
    metrics.add_metric(name="NewUploads", unit=Unit.Count, value=new)
    metrics.add_metric(name="MalformedUploadMessages", unit=Unit.Count, value=malformed)
    if failed:
        metrics.add_metric(name="UploadMessagesRetried", unit=Unit.Count, value=len(failed))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed],
            "changes": len(changes), "new": new, "test_events": sum(p.test_events for _, p in messages),
            "ignored": sum(p.ignored for _, p in messages), "malformed": malformed,
            "classified": classified.as_dict()}


def on_tick(context: object = None) -> dict[str, Any]:
    result = services.get().orchestrator.tick(deadline.of(context))
    if result.action is Action.STARTED:
        metrics.add_metric(name="TrainingRunsStarted", unit=Unit.Count, value=1)
    answer = result.as_dict()
    logger.info("tick", extra={"result": answer})
    return answer


def job_status(raw_event: Mapping[str, Any]) -> tuple[str, JobStatus] | None:
    """(kind, status) from a documented SageMaker state-change event; None for anything else."""
    event = EventBridgeEvent(dict(raw_event))
    detail = event.detail or {}
    if event.detail_type == SageMakerDetailType.TRAINING_JOB_STATE_CHANGE:
        name, status = detail.get("TrainingJobName", ""), detail.get("TrainingJobStatus", "")
        artifacts = (detail.get("ModelArtifacts") or {}).get("S3ModelArtifacts", "")
        kind = "training"
    elif event.detail_type == SageMakerDetailType.PROCESSING_JOB_STATE_CHANGE:
        name, status, artifacts = detail.get("ProcessingJobName", ""), detail.get("ProcessingJobStatus", ""), ""
        kind = "conversion"
    else:
        return None
    if not name or not status:
        return None
    reason = detail.get("FailureReason") or detail.get("ExitMessage") or ""
    return kind, JobStatus(name, status, str(reason), artifacts)


def on_sagemaker_event(raw_event: Mapping[str, Any]) -> dict[str, Any]:
    found = job_status(raw_event)
    if found is None or not job_names.version_from_job(found[1].name):
        return RunResult(Action.IGNORED, "not one of our jobs").as_dict()  # other SageMaker work in the account
    kind, status = found
    orchestrator = services.get().orchestrator
    result = orchestrator.on_training_state(status) if kind == "training" else orchestrator.on_conversion_state(status)
    if result.action in (Action.FAILED, Action.REGISTERED):
        metrics.add_metric(name="RunsFailed" if result.action is Action.FAILED else "ModelsRegistered", unit=Unit.Count, value=1)
    answer = result.as_dict()
    logger.info("sagemaker event", extra={"kind": kind, "job": status.name, "status": status.status, "result": answer})
    return answer


# HTTP -------------------------------------------------------------------------------------
def predict(content_type: str | None, body: bytes | None, query: Mapping[str, str] | None) -> dict[str, Any]:
    started = time.perf_counter()
    svc = services.get()
    try:
        request = predict_request.parse(content_type, body, query)
        result = svc.predictor.predict(request.image, request.top_k)
        if result is None:
            raise unavailable("no model has been approved yet; try again later", svc.settings.model_refresh_seconds)
    except ImageError as exc:
        error = ApiError(exc.reason, f"cannot use the image: {exc.detail}", _IMAGE_ERRORS.get(exc.reason, 400))
        _count_error(error)
        raise error from None
    except ApiError as exc:
        _count_error(exc)
        raise
    model, predictions = result
    elapsed_ms = (time.perf_counter() - started) * 1000
    metrics.add_dimension(name="model_version", value=model.entry.version)
    metrics.add_metric(name="PredictionLatency", unit=Unit.Milliseconds, value=elapsed_ms)
    metrics.add_metric(name="Predictions", unit=Unit.Count, value=1)
    logger.info("prediction", extra={"model_version": model.entry.version, "bytes": len(request.image),
                                     "top_label": predictions[0]["label"], "ms": round(elapsed_ms, 1)})
    # created_at: the registry's, as GET /models and /models/current give it (one time per version)
    return {"model": {"version": model.entry.version, "created_at": iso(model.entry.created_at)}, "predictions": predictions,
            "label": model.label(predictions), "threshold": model.threshold}


def _count_error(error: ApiError) -> None:
    metrics.add_metric(name="PredictionErrors", unit=Unit.Count, value=1)
    logger.info("prediction refused", extra={"status": error.status, "code": error.code})


def models(limit: int) -> dict[str, Any]:
    """GET /models: named fields and a reason from the status (for the page and API keys; model_rows.py)."""
    return {"models": public_rows(services.get().read_model.models(limit))}


def models_detail(limit: int) -> dict[str, Any]:
    """GET /models/detail (operators): the same versions with who asked for each run, its job, the full reason."""
    return {"models": services.get().read_model.models(limit)}


def _reason(body: Mapping[str, Any], default: str) -> str:
    """An operator action's reason, as the registry and the run history keep it (its schema caps its length)."""
    return str(body.get("reason") or default)


def photos(version: str, offset: int, limit: int) -> dict[str, Any]:
    """Which files made a model: its run's manifest (chalicelib/pipeline/manifest.py), `limit` from `offset`."""
    try:
        return services.get().read_model.photos(version, offset, limit)
    except NotFound as exc:
        raise not_found(str(exc)) from None


def current_model() -> dict[str, Any]:
    svc = services.get()
    current = svc.read_model.current()
    if current is None:
        raise unavailable("no model has been approved yet", svc.settings.model_refresh_seconds)
    return current


def status() -> dict[str, Any]:
    return services.get().read_model.status()


def status_summary() -> dict[str, Any]:
    """GET /status/summary: the status without file paths, job names or principals (for the page and API keys)."""
    return status_summary_of(services.get().read_model.status())


def caller(identity: Mapping[str, Any] | None, headers: Mapping[str, str]) -> Actor:
    """The operator request's caller (operator_request.caller): the IAM principal in the cloud, the local user in
    local mode (the server's, or the CLI's when it answers in its own process)."""
    local = services.get().settings.mode == Mode.LOCAL
    return operator_request.caller(identity, headers, local_user() if local else None)


def local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container's): the uid itself
        return f"uid {os.getuid()}"


# The parameters and bodies below were checked against their operation's schemas (app.py, request_schema.py); `by`
# is the caller (above).
def set_model_status(version: str, action: str, body: Mapping[str, Any], by: Actor) -> dict[str, Any]:
    reason = _reason(body, f"{action}d by hand")
    orchestrator = services.get().orchestrator
    try:
        entry = orchestrator.approve(version, reason, by) if action == "approve" else orchestrator.reject(version, reason, by)
    except NotFound as exc:
        raise not_found(str(exc)) from None
    return {"version": entry.version, "status": entry.status, "reason": entry.reason, "by": by.as_dict()}


def rollback(body: Mapping[str, Any], by: Actor) -> dict[str, Any]:
    reason = _reason(body, "rolled back by hand")
    try:
        old, new = services.get().orchestrator.rollback(reason, by)
    except Conflict as exc:
        raise conflict(str(exc)) from None
    return {"rejected": old.version, "current": new.version, "by": by.as_dict()}


def retrain(body: Mapping[str, Any], by: Actor) -> dict[str, Any]:
    """POST /runs. `full` is a JSON boolean (its schema refuses anything else: "false" or 0 read as true, or a
    typo read as false, would start the wrong, costly run)."""
    try:
        result = services.get().orchestrator.retrain(_reason(body, "run forced by hand"), by, full=bool(body["full"]))
    except Conflict as exc:
        raise conflict(str(exc)) from None
    return dict(result.as_dict(), by=by.as_dict())
