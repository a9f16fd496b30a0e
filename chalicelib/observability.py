"""Powertools logger and metrics shared by every handler, and the per-invocation wrapper.

Correlation ids: the API Gateway request id for HTTP, the SQS message ids for uploads, the
EventBridge event id for SageMaker events. Metrics are EMF lines flushed per invocation.
Nothing here ever logs a request body: images stay out of the logs.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="flowers")
metrics = Metrics(namespace="Flowers", service="flowers")
Unit = MetricUnit


def configure(service: str, namespace: str) -> None:
    logger.append_keys(service=service)
    metrics.namespace = namespace
    metrics.service = service


def correlation_id(event: Any) -> str | None:
    """Chalice hands middleware its own event objects; read the id each kind carries."""
    context = getattr(event, "context", None)
    if isinstance(context, dict) and context.get("requestId"):
        return str(context["requestId"])  # HTTP (API Gateway requestContext)
    raw: object = getattr(event, "to_dict", lambda: {})()
    if isinstance(raw, dict):
        if raw.get("id"):
            return str(raw["id"])  # EventBridge
        records = raw.get("Records") or []
        ids = [r.get("messageId") for r in records if isinstance(r, dict) and r.get("messageId")]
        if ids:
            return ids[0] if len(ids) == 1 else f"{ids[0]}+{len(ids) - 1}"  # SQS batch
    return None


def around(event: Any, get_response: Callable[[Any], Any], function: str = "") -> Any:
    logger.clear_state()
    logger.set_correlation_id(correlation_id(event))
    if function:
        logger.append_keys(handler=function)
    try:
        return get_response(event)
    finally:
        with warnings.catch_warnings():  # an invocation without metrics is normal (a quiet tick)
            warnings.simplefilter("ignore", UserWarning)
            metrics.flush_metrics()
