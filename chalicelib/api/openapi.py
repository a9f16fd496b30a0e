"""The HTTP API's contract: an OpenAPI 3.1 document, served at GET /openapi.json.

Its schemas are also what the handlers check requests with: every parameter and JSON body is
read by chalicelib/api/request_schema.py against the operation declared here (with the small
validator in validator.py), so what the API accepts and what it publishes cannot differ.

Why a hand-kept document and not models that generate it (pydantic): the Lambdas stay small
and quick to start (no pydantic-core in the zip, nothing to build at import), and the code
already returns plain dicts. The answers are kept honest by checks instead: a test fails when
a Chalice route, or a status code the handlers can answer, is not in it; and schemathesis
fuzzes a real local server against it in `make test` with all its checks, failing on any 5xx,
on a response whose status, headers or body the document does not describe, on a request
that breaks a schema and is accepted, or on an undeclared method not answered 405.
"""
from __future__ import annotations

import copy
from typing import Any

from chalicelib.pipeline import job_names, manifest, validation_report
from chalicelib.contract.imaging import MAX_IMAGE_BYTES
from chalicelib.api import access
from chalicelib.contract.vocabulary import Access, ActorKind, Command, DecidedBy, ModelStatus, RunOutcome, Stage, StartKind, Via, values

Schema = dict[str, Any]

# POST /predict's limits: why 4 MiB (MAX_IMAGE_BYTES, chalicelib/contract/imaging.py) is in
# chalicelib/api/predict_request.py, which enforces them.
MAX_TOP_K = 1000
DEFAULT_TOP_K = 5

_VERSION = {"type": "string", "pattern": job_names.VERSION.pattern, "description": "a model version: 16 hexadecimal characters"}
_TIME = {"type": "string", "description": "ISO 8601, UTC; empty when unknown"}
_NULLABLE_TIME = {"type": ["string", "null"], "description": "ISO 8601, UTC"}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_MANIFEST_FIELDS: dict[str, Schema] = {"uri": {"type": "string", "description": "s3://ARTIFACTS/manifests/<version>.json"},
                                       "sha256": {"type": "string"}}
_MANIFEST = {"type": "object", "required": sorted(_MANIFEST_FIELDS), "properties": _MANIFEST_FIELDS,
             "description": "the run's manifest: exactly the files it trained on"}
# GET /models: a model's status, or for a run that never became one, failed or its stage
_MODEL_STATUSES = values(*ModelStatus, RunOutcome.FAILED, Stage.LAUNCHING, Stage.TRAINING, Stage.CONVERTING)
_SKIPPED_LISTED = validation_report.MAX_LISTED
_LABEL_ISSUES_LISTED = validation_report.MAX_LABEL_ISSUES
_SKIP_REASONS = ("a stable code: while scanning no_label, bad_label, empty_label, multi_label, empty_file, duplicate, "
                 "conflicting_labels; while decoding not_an_image, corrupt, too_small, image_too_large, "
                 "unsupported_image_type, decompression_bomb")


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with these fields; more may come (clients ignore what they do not know)."""
    return {"type": "object", "required": sorted(required), "properties": {**required, **(optional or {})}}


_ACTOR_REF = {"$ref": "#/components/schemas/Actor"}
_MODEL_OPTIONAL: dict[str, Schema] = {
    "package_version": {"type": "integer"}, "sha256": {"type": "string"}, "size_bytes": {"type": ["integer", "null"]},
    "dataset_version": {"type": "string", "description": "the data set version it was trained on: its version, but "
                                                         "for a run by hand of a version that ran before"},
    "decided_by": {"oneOf": [{"type": "null", "description": "not decided, or the records do not say"},
                             {"type": "string", "enum": values(*DecidedBy)}]}}
_NULLABLE_ACTOR = {"oneOf": [{"type": "null", "description": "the pipeline itself"}, _ACTOR_REF]}

SCHEMAS: dict[str, Schema] = {
    "Actor": {**_object(
        {"principal": {"type": "string", "description": "iam: the IAM principal's ARN (API Gateway's userArn); local: the "
                                                      "user the server runs as"},
         "kind": {"type": "string", "enum": values(*ActorKind)},
         "via": {"type": "string", "enum": values(*Via), "description": "cli: a flowers command (its User-Agent)"}},
        {"account": {"type": "string", "description": "iam: the principal's AWS account"}}),
        "description": "who did an operator action (approve, reject, rollback, a run by hand)"},
    "OperatorAction": _object(
        {"command": {"type": "string", "enum": values(*Command)}, "by": _ACTOR_REF, "reason": {"type": "string"},
         "at": _TIME, "model_version": _VERSION, "dataset_version": {"type": "string"}, "training_job": {"type": "string"}}),
    "Error": _object({"error": _object({"code": {"type": "string", "description": "stable, for programs"},
                                        "message": {"type": "string", "description": "for people"}})}),
    "Prediction": _object({
        "model": _object({"version": _VERSION, "created_at": {"type": "string"}}),
        "predictions": {"type": "array", "minItems": 1, "description": "best first",
                        "items": _object({"label": {"type": "string"}, "score": {"type": "number", "minimum": 0, "maximum": 1}})},
        "label": {"type": ["string", "null"],
                  "description": "the top class; null (\"not recognised\") when its score is below `threshold`, or when it "
                                 "is the background class `other`"},
        "threshold": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                      "description": "the model's calibrated score threshold (chosen to refuse at most 5 % of validation "
                                     "photos); null for models trained without one, whose `label` is always the top class"},
    }),
    "PredictJson": _object({"image": {"type": "string", "description": "base64 (standard or URL-safe), or a data: URL"}}),
    "Metrics": {"type": "object", "description": "test accuracy, test count, validation accuracy, per class, baseline",
                "properties": {
                    "ece": {"type": ["number", "null"], "description": "expected calibration error (15 bins) of the "
                                                                       "served scores on the test split"},
                    "ece_uncalibrated": {"type": ["number", "null"],
                                         "description": "the same before temperature scaling"},
                    "threshold": {"type": ["number", "null"], "description": "below it a prediction's label is null"},
                    "per_class": {"type": ["object", "null"], "description": "each class's test precision, recall, F1 "
                                  "(older models: none) and support",
                                  "additionalProperties": {"type": "object", "properties": {
                                      "precision": {"type": "number"}, "recall": {"type": "number"},
                                      "f1": {"type": "number"}, "support": {"type": "integer"}}}},
                    "confused_pairs": {"type": ["array", "null"], "description": "the most confused (true, predicted) "
                                       "pairs on the test photos, most photos first",
                                       "items": {"type": "object", "properties": {
                                           "true": {"type": "string"}, "predicted": {"type": "string"},
                                           "count": {"type": "integer"}}}},
                }},
    "Model": {**_object(
        {"version": _VERSION, "status": {"type": "string", "enum": _MODEL_STATUSES},
         "created_at": _TIME, "reason": {"type": "string", "description": "a short sentence from the status and who "
                                                                           "decided it (GET /models/detail has the full one)"},
         "metrics": {"$ref": "#/components/schemas/Metrics"}},
        _MODEL_OPTIONAL), "description": "a model version without operator data: no principal, job name or full "
                                         "reason (chalicelib/pipeline/model_rows.py)"},
    "ModelDetail": _object(
        {"version": _VERSION, "status": {"type": "string", "enum": _MODEL_STATUSES},
         "created_at": _TIME, "reason": {"type": "string", "description": "the registry's (or a failed run's) reason, "
                                                                           "naming who approved or rejected it"},
         "metrics": {"$ref": "#/components/schemas/Metrics"}},
        {**_MODEL_OPTIONAL, "training_job": {"type": "string"},
         "requested_by": {"oneOf": [{"type": "null", "description": "the pipeline started its run on uploads"},
                                    _object({"by": _ACTOR_REF, "reason": {"type": "string"}})]}}),
    "Models": _object({"models": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}}),
    "ModelsDetail": _object({"models": {"type": "array", "items": {"$ref": "#/components/schemas/ModelDetail"}}}),
    "CurrentModel": _object({
        "version": _VERSION, "created_at": {"type": "string"}, "labels": {"type": "array", "items": {"type": "string"}},
        "input": {"type": "object"}, "preprocessing": {"type": "object"},
        "quantization": {"type": ["string", "null"]}, "preset": {"type": ["string", "null"]},
        "sha256": {"type": "string"}, "size_bytes": {"type": "integer"},
        "metrics": {"$ref": "#/components/schemas/Metrics"}, "dataset_version": {"type": "string"},
        "download_url": {"type": "string", "description": "model.tflite, without credentials (presigned in AWS)"},
        "download_expires_in": {"type": "integer"}, "labels_url": {"type": "string"}, "metadata_url": {"type": "string"},
    }, {"manifest": {"oneOf": [{"type": "null", "description": "trained before runs recorded their photos"}, _MANIFEST]}}),
    "Photos": _object({
        "version": _VERSION,
        "dataset_uri": {"type": "string", "description": "the data set prefix the keys are relative to"},
        "count": {"type": "integer", "minimum": 0, "description": "files in the manifest, all pages"},
        "bytes": {"type": ["integer", "null"]},
        "manifest": _object({**_MANIFEST_FIELDS,
                             "recorded_sha256": {"type": ["string", "null"], "description": "as metadata.json and the registry name it"},
                             "matches": {"type": ["boolean", "null"], "description": "the manifest read now is the recorded one"}}),
        "offset": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 1},
        "next_offset": {"type": ["integer", "null"], "description": "the next page's offset; null on the last page"},
        "files": {"type": "array", "description": "photos and their .txt labels, by key",
                  "items": _object({"key": {"type": "string"}, "etag": {"type": "string"}, "size": {"type": "integer"}},
                                   {"version_id": {"type": "string", "description": "S3's, in a versioned bucket"}})},
    }),
    "Status": _object(
        {"dataset": _object({"uri": {"type": "string"}, "version": {"type": "string"}}),
         "pending_uploads": {"type": "integer"}, "last_upload_at": _NULLABLE_TIME,
         "running_job": {"oneOf": [{"type": "null"}, _object(
             {"version": {"type": "string"}, "training_job": {"type": "string"}, "stage": {"type": "string"},
              "conversion_job": {"type": ["string", "null"]}, "started_at": _TIME},
             {"progress": {"type": "object", "description": "local mode: the job's attempt, epoch and metrics"},
              "attempt": {"type": "integer", "description": "the current job's attempt (retries and forced runs count up)"},
              "failed_attempts": {"type": "array", "items": {"type": "string"}, "description": "earlier attempts' reasons"},
              "retry_at": {"type": ["string", "null"], "description": "stage waiting: when the next attempt starts"},
              "model_version": {**_VERSION, "description": "the version its model will have"},
              "requested_by": _NULLABLE_ACTOR, "request_reason": {"type": ["string", "null"]}})]},
         "last_outcome": {"type": ["object", "null"]},
         "next_run": _object({"action": {"type": "string"}, "reason": {"type": "string"}, "in_seconds": {"type": "integer"}}),
         "validation": {"oneOf": [{"type": "null", "description": "no training job's report yet"},
                                  {"$ref": "#/components/schemas/Validation"}]}},
        {"local": {"type": "object", "description": "local mode only: the bucket folder, quiet period, preset"},
         "operator_actions": {"type": "array", "items": {"$ref": "#/components/schemas/OperatorAction"},
                              "description": "who did what: the newest runs' operator actions, newest first"}}),
    "StatusSummary": {**_object(
        {"dataset": _object({"version": {"type": "string"}}),
         "local": {"type": "object", "description": "local mode only: the bucket folder, quiet period, preset"},
         "pending_uploads": {"type": "integer"}, "last_upload_at": _NULLABLE_TIME,
         "running_job": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
             "version": {"type": "string"}, "stage": {"type": "string"}, "started_at": _TIME,
             "attempt": {"type": "integer"}, "retry_at": {"type": ["string", "null"]}, "model_version": _VERSION,
             "progress": {"type": ["object", "null"], "description": "local mode: the job's attempt, phase, epoch and metrics"}}}]},
         "last_outcome": {"type": ["object", "null"], "description": "version, model_version, status, model_status, at"},
         "next_run": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
             "action": {"type": "string"}, "in_seconds": {"type": "integer"}}}]},
         "validation": {"oneOf": [{"type": "null", "description": "no training job's report yet"}, _object(
             {"usable_images": {"type": "integer"}, "skipped_count": {"type": "integer"},
              "skipped_by_reason": {"type": "object", "additionalProperties": {"type": "integer"}},
              "ignored_count": {"type": "integer"},
              "label_issues": {"type": ["object", "null"], "description": "count, photos, skipped: no files"},
              "class_balance": {"type": ["object", "null"], "description": "status, largest_to_smallest, "
                                                                           "min_recommended, warnings"}},
             {"dataset_version": {"type": "string"}})]}}),
        "description": "GET /status without what is for operators: no file of the data set, no job name, no failure "
                       "reason, no principal (chalicelib/pipeline/status_summary.py)"},
    "Validation": {**_object(
        {"training_job": {"type": "string", "description": "the job whose validation.json this is: the running job's "
                                                           "once it has one, else the last run's"},
         "dataset_version": {"type": "string"}, "layout": {"type": "string"}, "usable_images": {"type": "integer"},
         "skipped_count": {"type": "integer", "description": "every skipped file, listed or not"},
         "skipped_by_reason": {"type": "object", "additionalProperties": {"type": "integer"}},
         "skipped": {"type": "array", "maxItems": _SKIPPED_LISTED, "description": "the first files by path",
                     "items": _object({"file": {"type": "string", "description": "relative to the data set prefix"},
                                       "reason": {"type": "string", "description": _SKIP_REASONS},
                                       "detail": {"type": "string"}})},
         "skipped_not_listed": {"type": "integer", "description": "skipped files beyond the list"},
         "ignored_count": {"type": "integer"},
         "ignored_files": {"type": "array", "maxItems": _SKIPPED_LISTED, "items": {"type": "string"},
                           "description": "files that are neither photos nor their labels (e.g. a .txt with no photo)"},
         "ignored_not_listed": {"type": "integer"},
         "label_issues": {"oneOf": [{"type": "null", "description": "a job from before the search"}, {"$ref": "#/components/schemas/LabelIssues"}]},
         "class_balance": {"oneOf": [{"type": "null", "description": "a job from before the check"},
                                     {"$ref": "#/components/schemas/ClassBalance"}]}}),
        "description": "The last run's validation report (validation.json of its training job): every file the "
                       "training skipped, while scanning or decoding, with a reason code and a detail; its likely "
                       "mislabelled photos and its class balance."},
    "LabelIssues": {**_object(
        {"count": {"type": "integer", "description": "every photo flagged, listed or not"},
         "photos": {"type": "integer", "description": "photos searched: every usable photo of the data set"},
         "issues": {"type": "array", "maxItems": _LABEL_ISSUES_LISTED, "description": "most likely mislabelled first",
                    "items": _object({"file": {"type": "string", "description": "relative to the data set prefix"},
                                      "given": {"type": "string", "description": "its label in the data set"},
                                      "suggested": {"type": "string", "description": "the class it looks like"},
                                      "confidence": {"type": "number", "minimum": 0, "maximum": 1,
                                                     "description": "out-of-fold probability of the suggested class"}})},
         "not_listed": {"type": "integer"},
         "skipped": {"type": ["string", "null"], "description": "why there was no search (too few photos), else null"}}),
        "description": "Photos whose label looks wrong (cleanlab's find_label_issues on out-of-fold probabilities "
                       "of the run's phase-1 features). Suggestions only: the pipeline never relabels or drops them."},
    "ClassBalance": _object(
        {"status": {"type": "string", "description": "balanced enough, weighted, or not weighted (class_weights=false)"},
         "largest_to_smallest": {"type": "number", "description": "training photos of the largest class / the smallest's"},
         "class_weights": {"type": ["object", "null"], "additionalProperties": {"type": "number"},
                           "description": "each class's loss weight when the classes were weighted, else null"},
         "min_recommended": {"type": "integer", "description": "photos per class under which a class is warned about"},
         "warnings": {"type": "array", "items": {"type": "string"}}}),
    "ModelStatus": _object({"version": _VERSION, "status": {"type": "string"}, "reason": {"type": "string"}}, {"by": _ACTOR_REF}),
    "Rollback": _object({"rejected": _VERSION, "current": _VERSION}, {"by": _ACTOR_REF}),
    "RunStarted": _object({"action": {"type": "string", "description": "started; failed when the job service refused"},
                           "version": _VERSION, "reason": {"type": "string"}},
                          {"job": {"type": "string"}, "by": _ACTOR_REF,
                           "model_version": {**_VERSION, "description": "its model's version: the data set version's, "
                                                                        "but for a version that ran before"},
                           "start_from": _object({"kind": {"type": "string", "enum": values(StartKind.PRODUCTION, StartKind.IMAGENET),
                                                           "description": "production: a warm start from the served model's "
                                                                          "weights; imagenet: a full run"},
                                                  "reason": {"type": "string"}},
                                                 {}) | {"description": "where the run starts from, and why (once started)"}}),
    "Reason": {"type": "object", "properties": {"reason": {"type": "string", "maxLength": 500}}},
    "RunRequest": {"type": "object", "properties": {
        "reason": {"type": "string", "maxLength": 500},
        "full": {"type": "boolean", "default": False,
                 "description": "true: this run starts from ImageNet, not warm from the production model (once; the next "
                                "run decides afresh). For every run: training.json's {\"warm_start\": \"none\"} or "
                                "FULL_RETRAIN_EVERY=1"}}},
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _error(description: str, headers: dict[str, Schema] | None = None) -> Schema:
    response = _json("Error", description)
    if headers:
        response["headers"] = headers
    return response


_INTERNAL = _error("an unexpected failure; the request id is in the logs")
# `flowers up`'s operator token (chalicelib/local_stack/guard.py): the operator routes name this scheme, and the local
# server refuses them without it (401 unauthorized) before any handler runs. In AWS the routes' own authorization applies.
LOCAL_TOKEN = "flowersUpToken"
_UNAUTHORIZED = _error("unauthorized: flowers up only: no operator token, or not the home's (Authorization: Bearer, "
                       "HOME/operator-token)")
_OPERATOR_ERRORS = {
    "401": _UNAUTHORIZED,
    "400": _error("bad_json: the body is not a JSON object"),
    "403": _error("cross_site_request: sent by a page of another site (in AWS also: no IAM signature)"),
    "413": _error("too_large: the JSON body is over 64 KiB"),
    "415": _error("unsupported_media_type: model actions take Content-Type application/json"),
}
_NO_MODEL = _error("no_model: no model has been approved yet",
                   {"Retry-After": {"description": "seconds", "schema": {"type": "string", "pattern": "^[0-9]+$"}}})
_VERSION_PARAMETER = {"name": "version", "in": "path", "required": True, "schema": _VERSION}
_REASON_BODY = {"required": True, "content": {"application/json": {"schema": _ref("Reason")}},
                "description": "JSON, so that a page of another site cannot send it; may be empty"}


def _operation(summary: str, responses: dict[str, Schema], **more: Any) -> Schema:
    return {"summary": summary, "responses": {**responses, "500": _INTERNAL}, **more}


_PREDICT = _operation(
        "Top-k labels of one photo (JPEG, PNG, BMP, WEBP; raw bytes or base64 in JSON)",
        {"200": _json("Prediction", "the labels, best first, and the model that answered"),
         "400": _error("bad_top_k, empty_body, bad_json, bad_base64, not_an_image, corrupt, too_small, empty_file"),
         "413": _error(f"too_large (over {MAX_IMAGE_BYTES} bytes), image_too_large (over the pixel cap), decompression_bomb"),
         "415": _error("unsupported_media_type (the Content-Type), unsupported_image_type (the decoded format)"),
         "503": _NO_MODEL},
        parameters=[{"name": "top_k", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": DEFAULT_TOP_K}}],
        requestBody={"required": True, "content": {
            **{kind: {"schema": {"type": "string", "format": "binary", "maxLength": MAX_IMAGE_BYTES}}
               for kind in ("image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream")},
            "application/json": {"schema": _ref("PredictJson")}}})
_CURRENT_MODEL = _operation("The served model: labels, input, metrics and download links for phones",
                            {"200": _json("CurrentModel", "the served model"), "503": _NO_MODEL})
_LIMIT_PARAMETER: Schema = {"name": "limit", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}}
_APP_NOTE = (" (apps: signed with SigV4 using the Cognito identity pool's guest credentials; the same answers as ")


def _app_twin(operation: Schema, of: str) -> Schema:
    return dict(operation, summary=operation["summary"] + _APP_NOTE + of + ")")


PATHS: dict[str, dict[str, Schema]] = {
    "/predict": {"post": _PREDICT},
    f"{access.APP_PREFIX}/predict": {"post": _app_twin(_PREDICT, "POST /predict")},
    "/models": {"get": _operation(
        "Model versions, newest first, with their status and metrics (and runs that never became a model)",
        {"200": _json("Models", "the versions"), "400": _error("bad_limit")},
        parameters=[_LIMIT_PARAMETER])},
    "/models/detail": {"get": _operation(
        "GET /models with operator data: who asked for each run, failed runs' training jobs, the full reasons (operators)",
        {"200": _json("ModelsDetail", "the versions"), "400": _error("bad_limit"), "401": _UNAUTHORIZED},
        parameters=[_LIMIT_PARAMETER])},
    "/models/current": {"get": _CURRENT_MODEL},
    f"{access.APP_PREFIX}/models/current": {"get": _app_twin(_CURRENT_MODEL, "GET /models/current")},
    "/models/{version}/photos": {"get": _operation(
        "The files a model was trained on (photos and their .txt labels): its run's manifest, a page at a time",
        {"200": _json("Photos", "keys, ETags and sizes, by key"),
         "400": _error("bad_version, bad_offset, bad_limit"),
         "401": _UNAUTHORIZED,
         "404": _error("not_found: no such model or run, or it was trained before runs recorded their photos")},
        
        parameters=[_VERSION_PARAMETER,
                    {"name": "offset", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0}},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": manifest.MAX_PAGE, "default": manifest.PAGE}}])},
    "/status": {"get": _operation(
        "The pipeline: pending uploads, the running job, the next run, the last outcome, skipped and likely "
        "mislabelled files, who did what (operators)",
        {"200": _json("Status", "where the pipeline stands")})},
    "/status/summary": {"get": _operation(
        "The pipeline, as GET /status without file paths, job names, failure reasons or principals",
        {"200": _json("StatusSummary", "where the pipeline stands")})},
    "/status/label-issues/thumbnail": {"get": _operation(
        "A photo GET /status lists as likely mislabelled, as a small JPEG (squashed to a square, as the model sees it)",
        {"200": {"description": "the thumbnail", "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
         "401": _UNAUTHORIZED, "404": _error("not_found: not a listed photo, or it is gone or unreadable")},
        
        parameters=[{"name": "file", "in": "query", "required": True, "description": "its `file` in validation.label_issues",
                     "schema": {"type": "string"}}])},
    "/models/{version}/confusion-matrix": {"get": _operation(
        "The confusion matrix of a model on its test photos, as a picture",
        {"200": {"description": "rows true, columns predicted", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
         "400": _error("bad_version"), "404": _error("not_found: no such model, or it has no confusion matrix")},
        parameters=[_VERSION_PARAMETER])},
    "/models/{version}/approve": {"post": _operation(
        "Approve a model version (operators): the newest approved one is served",
        {"200": _json("ModelStatus", "the version's new status"), **_OPERATOR_ERRORS,
         "404": _error("not_found: no such model version")},
        parameters=[_VERSION_PARAMETER], requestBody=_REASON_BODY)},
    "/models/{version}/reject": {"post": _operation(
        "Reject a model version (operators)",
        {"200": _json("ModelStatus", "the version's new status"), **_OPERATOR_ERRORS,
         "404": _error("not_found: no such model version")},
        parameters=[_VERSION_PARAMETER], requestBody=_REASON_BODY)},
    "/models/rollback": {"post": _operation(
        "Reject the served model; the previous approved one serves again (operators)",
        {"200": _json("Rollback", "what was rejected and what serves now"), **_OPERATOR_ERRORS,
         "409": _error("conflict: there is no earlier approved model")},
        requestBody=_REASON_BODY)},
    "/runs": {"post": _operation(
        "Start a training run for the data set as it is now, even if its version ran before (operators)",
        {"200": _json("RunStarted", "the run and its training job"), **_OPERATOR_ERRORS,
         "400": _error("bad_json: the body is not a JSON object; bad_full: full is not a JSON boolean"),
         "409": _error("conflict: a run is in progress, the data set is empty, or its version made a model already")},
        requestBody=dict(_REASON_BODY, content={"application/json": {"schema": _ref("RunRequest")}}))},
    "/": {"get": _operation(
        "The web page: try photos, see the models and the pipeline",
        {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}})},
    "/openapi.json": {"get": _operation(
        "This document", {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}})},
}


# How each kind of access (chalicelib/api/access.py) is asked for, as OpenAPI security schemes.
SECURITY_SCHEMES: dict[str, Schema] = {
    LOCAL_TOKEN: {"type": "http", "scheme": "bearer",
                  "description": "flowers up only: the home's operator token, HOME/operator-token (mode 0600), which the "
                                 "CLI sends and the page gets from the link flowers up prints (#token=...)"},
    "api_key": {"type": "apiKey", "in": "header", "name": "x-api-key",
                "description": "a client's API key (scripts, the web page); in AWS only"},
    "sigv4": {"type": "apiKey", "in": "header", "name": "Authorization",
              "description": "AWS Signature Version 4, service execute-api (with X-Amz-Date and, for temporary "
                             "credentials, X-Amz-Security-Token): operators' IAM credentials, or for the /app/ routes "
                             "the Cognito identity pool's guest credentials; in AWS only"},
}
_SECURITY: dict[Access, list[dict[str, list[str]]]] = {Access.PUBLIC: [], Access.API_KEY: [{"api_key": []}], Access.APP: [{"sigv4": []}],
             Access.OPERATOR: [{"sigv4": []}, {LOCAL_TOKEN: []}]}  # alternatives: SigV4 in AWS, the token on flowers up


def _secured(paths: dict[str, dict[str, Schema]]) -> dict[str, dict[str, Schema]]:
    """Each operation with its security (access.ROUTES: a route without a decision fails here); an operator route
    also documents `flowers up`'s 401 without the operator token."""
    def secured(operation: Schema, kind: Access) -> Schema:
        responses = operation.get("responses", {})
        if kind == Access.OPERATOR:
            responses = {**responses, "401": _UNAUTHORIZED}
        return dict(operation, security=_SECURITY[kind], responses=responses)
    return {path: {method: secured(operation, access.ROUTES[(path, method)]) for method, operation in operations.items()}
            for path, operations in paths.items()}


def document(server_url: str = "/") -> dict[str, Any]:
    """The whole document; a fresh copy each call (callers may add to it)."""
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "flowers", "version": "1",
                 "description": "Flower photo classification; errors are JSON {\"error\": {\"code\", \"message\"}}. "
                                "In AWS each operation's `security` applies: the x-api-key header, or an IAM (SigV4) "
                                "signature (operators; apps on the /app/ routes), or none (the page, this document); "
                                "on `flowers up` none does. On `flowers up` a path no route has answers 404 not_found, "
                                "and a method its route does not take 405 method_not_allowed with an Allow header "
                                "(in AWS, API Gateway answers both before the app runs). JSON answers carry "
                                "Cache-Control: no-store; the page, the pictures and the model files no-cache. "
                                "`flowers up` answers only requests whose Host is 127.0.0.1, localhost or [::1] on "
                                "its port (else 421 misdirected_request, before any route runs), and its operator "
                                "routes (security flowersUpToken) need the home's operator token (else 401). Every "
                                "answer carries Content-Security-Policy, X-Content-Type-Options: nosniff and "
                                "Referrer-Policy: no-referrer."},
        "servers": [{"url": server_url}],
        "paths": _secured(PATHS),
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
    })
