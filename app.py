"""Chalice app: thin wiring only. The logic lives in chalicelib/ (see chalicelib/api/handlers.py).

Event sources, and why:
- uploads: S3 -> the stack's SQS queue (with a DLQ) -> on_upload. Chalice's on_s3_event
  cannot be used with `chalice package`/CDK; SQS also batches a burst of uploads into few
  invocations. Nothing starts a run here: the scheduled tick decides (debounce).
- tick: every minute, the debounce decision (and healing of lost events).
- SageMaker training/processing job state changes from EventBridge -> on_sagemaker_job.
Importing this module reads no settings and creates no client (`chalice package` needs none).
"""
import json
import logging
from typing import Any, Callable

from chalice import Chalice, IAMAuthorizer, Rate, Response
from chalice.app import CloudWatchEvent, Request, SQSEvent

from chalicelib.api import access, handlers, openapi, operator_request, request_schema, security_headers, web

from chalicelib import observability
from chalicelib.api.errors import ApiError
from chalicelib.api.predict_request import IMAGE_TYPES
from chalicelib.contract.vocabulary import EventSource, SageMakerDetailType, values
from chalicelib.pipeline.actors import Actor

app = Chalice(app_name="flowers")
app.log.setLevel(logging.WARNING)
# Image bodies must reach the function as bytes: API Gateway binary media types.
app.api.binary_types = sorted(set(app.api.binary_types) | set(IMAGE_TYPES))
# API Gateway's IAM authorizer (SigV4) on the operator routes and the apps' routes (chalicelib/api/access.py decides
# which route is which; the callers' IAM policies decide who may call what: operators, or the app guest role).
operators = IAMAuthorizer()
apps = operators  # one authorizer: what tells a phone from an operator is its role's policy (infra/)


@app.middleware("all")
def _observability(event: Any, get_response: Callable[[Any], Any]) -> Any:
    return observability.around(event, get_response)


@app.middleware("http")
def _security_headers(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """CSP, nosniff, no-referrer on every answer of every route, Chalice's own errors included (security_headers.py)."""
    response = get_response(event)
    security_headers.add(response.headers)
    return response


def _request() -> Request:
    request = app.current_request
    assert request is not None, "an HTTP route runs with a current request"
    return request


def _body() -> bytes | None:
    raw = _request().raw_body  # bytes for every content type the routes take (binary_types above)
    return raw.encode() if isinstance(raw, str) else raw


def _parameters() -> dict[str, Any]:
    """The route's parameters, by name, read and checked with the schemas its operation in the OpenAPI document
    declares (request.path is the route's template, the document's key): 400 bad_<name> for a bad one."""
    request = _request()
    return request_schema.parameters(request.path, request.method, request.uri_params, request.query_params)


def _operator_body() -> dict[str, Any]:
    """The JSON body of an operator route, refused when another site's page could have sent it, then checked
    with the schema its operation in the OpenAPI document declares."""
    request = _request()
    return request_schema.json_body(request.path, request.method, operator_request.parse(request.headers, _body()))


def _caller() -> Actor:
    """Who sent the operator request: API Gateway's request context names the IAM principal (the routes' authorizer)."""
    request = _request()
    return handlers.caller(request.context.get("identity"), request.headers)


# JSON answers are live state (a browser or proxy must not replay an old /status); the page and the
# pictures may be kept but are checked again, so a new page or a retrained model shows at once.
NO_STORE = {"Cache-Control": "no-store"}


def _respond(call: Callable[[], Any], status: int = 200, content_type: str = "application/json",
             extra: dict[str, str] | None = None) -> Response:
    """Run a chalicelib function and format its answer (JSON unless told); bad input never becomes a 500."""
    try:
        answer = call()
        body = json.dumps(answer) if content_type == "application/json" else answer
        cache = "no-store" if content_type == "application/json" else "no-cache"
        return Response(body=body, status_code=status, headers={"Content-Type": content_type, "Cache-Control": cache, **(extra or {})})
    except ApiError as error:
        headers: dict[str, str | list[str]] = {"Content-Type": "application/json", **NO_STORE, **error.headers}
        return Response(body=json.dumps(error.body()), status_code=error.status, headers=headers)
    except Exception:
        observability.logger.exception("unhandled error")
        body = {"error": {"code": "internal", "message": "internal error; the request id is in the logs"}}
        return Response(body=json.dumps(body), status_code=500, headers={"Content-Type": "application/json", **NO_STORE})


# events -------------------------------------------------------------------------------------
# The stack points this event source at its own queue, "<stack name>-uploads", by ARN
# (infra/flowers_infra/chalice_app.py): this name is the default stack's, and local mode's.
@app.on_sqs_message(queue="flowers-uploads", batch_size=100, maximum_batching_window_in_seconds=30)
def on_upload(event: SQSEvent) -> dict[str, Any]:
    return handlers.on_upload_messages(event.to_dict(), event.context)  # the context: the Lambda's remaining time


@app.schedule(Rate(1, unit=Rate.MINUTES))
def tick(event: CloudWatchEvent) -> dict[str, Any]:
    return handlers.on_tick(event.context)


@app.on_cw_event({"source": [EventSource.SAGEMAKER.value], "detail-type": values(*SageMakerDetailType)})
def on_sagemaker_job(event: CloudWatchEvent) -> dict[str, Any]:
    return handlers.on_sagemaker_event(event.to_dict())


# HTTP ---------------------------------------------------------------------------------------
def _predict() -> Response:
    request = _request()
    return _respond(lambda: handlers.predict(request.headers.get("content-type"), _body(), request.query_params))


@app.route("/predict", methods=["POST"], content_types=["*/*"])  # our own 415, in our JSON shape
def predict() -> Response:
    return _predict()


# The apps' twins (phones, signed with the identity pool's guest credentials): the same handlers as /predict and
# /models/current. Twins, because API Gateway takes one authorizer per method and scripts keep their API keys.
@app.route(f"{access.APP_PREFIX}/predict", methods=["POST"], authorizer=apps, content_types=["*/*"])
def app_predict() -> Response:
    return _predict()


@app.route("/models", methods=["GET"])
def list_models() -> Response:
    return _respond(lambda: handlers.models(**_parameters()))


@app.route("/models/detail", methods=["GET"], authorizer=operators)
def list_models_detail() -> Response:
    """The model versions with who asked for each run, its training job and the registry's full reason (operators)."""
    return _respond(lambda: handlers.models_detail(**_parameters()))


@app.route("/models/current", methods=["GET"])
def current_model() -> Response:
    return _respond(handlers.current_model)


@app.route(f"{access.APP_PREFIX}/models/current", methods=["GET"], authorizer=apps)
def app_current_model() -> Response:
    return _respond(handlers.current_model)


# Operator data (IAM): the files a model was trained on, the status with file paths and job names, the photos.
@app.route("/models/{version}/photos", methods=["GET"], authorizer=operators)
def model_photos(version: str) -> Response:
    """The files a model was trained on: its run's manifest, a page at a time."""
    return _respond(lambda: handlers.photos(**_parameters()))


@app.route("/status", methods=["GET"], authorizer=operators)
def status() -> Response:
    return _respond(handlers.status)


@app.route("/status/summary", methods=["GET"])
def status_summary() -> Response:
    """The status without file paths, job names or principals: what the page shows a visitor with an API key."""
    return _respond(handlers.status_summary)


@app.route("/models/{version}/confusion-matrix", methods=["GET"])
def confusion_matrix(version: str) -> Response:
    return _respond(lambda: web.confusion_png(**_parameters()), content_type="image/png")


@app.route("/status/label-issues/thumbnail", methods=["GET"], authorizer=operators)
def label_issue_thumbnail() -> Response:
    """A photo the last run lists as likely mislabelled, small (the web page's thumbnails)."""
    return _respond(lambda: web.label_issue_thumbnail(**_parameters()), content_type="image/jpeg")


@app.route("/", methods=["GET"])
def index() -> Response:
    """The web page: try photos, see the models and the pipeline (chalicelib/api/web/index.html)."""
    return _respond(web.index_html, content_type="text/html; charset=utf-8", extra=web.page_headers())


@app.route("/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    """The API's contract (OpenAPI 3.1), with this deployment's base path (API Gateway's stage) as its server."""
    path = str(_request().context.get("path") or "/openapi.json")
    return _respond(lambda: openapi.document(path[: -len("openapi.json")] or "/"))


# The body first: a request another site's page could have sent is refused before anything else is said about it.
@app.route("/models/{version}/approve", methods=["POST"], authorizer=operators, content_types=["*/*"])
def approve_model(version: str) -> Response:
    return _respond(lambda: handlers.set_model_status(action="approve", body=_operator_body(), by=_caller(), **_parameters()))


@app.route("/models/{version}/reject", methods=["POST"], authorizer=operators, content_types=["*/*"])
def reject_model(version: str) -> Response:
    return _respond(lambda: handlers.set_model_status(action="reject", body=_operator_body(), by=_caller(), **_parameters()))


@app.route("/runs", methods=["POST"], authorizer=operators, content_types=["*/*"])
def start_run() -> Response:
    return _respond(lambda: handlers.retrain(_operator_body(), _caller()))


@app.route("/models/rollback", methods=["POST"], authorizer=operators, content_types=["*/*"])
def rollback_model() -> Response:
    return _respond(lambda: handlers.rollback(_operator_body(), _caller()))
