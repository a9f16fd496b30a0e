"""Validation of a POST /predict request: a pure function from headers/body/query to bytes + top_k.

Size limits, and why: API Gateway (REST) takes bodies up to 10 MB, but a synchronous Lambda
invocation takes at most 6 MB of event, and binary bodies travel base64-encoded in it (4/3
larger). So the largest photo that can reach the function is about 4.4 MiB; we accept up to
MAX_IMAGE_BYTES (4 MiB) of image bytes, raw or inside JSON base64, and answer 413 above it.
Bodies between ~4.4 MiB and 10 MB are refused by Lambda before this code runs (API Gateway
then answers 413/502 itself); local mode enforces the same 4 MiB. The limits are published with
the operation in chalicelib/api/openapi.py, whose schemas check `top_k` and the JSON body here.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Mapping

from chalicelib.api import request_schema
from chalicelib.api.errors import bad_request, too_large, unsupported
from chalicelib.contract.imaging import MAX_IMAGE_BYTES

PATH = "/predict"  # the operation in the OpenAPI document
IMAGE_TYPES = ("image/jpeg", "image/jpg", "image/png", "image/webp", "image/bmp", "image/x-ms-bmp", "application/octet-stream")
JSON_TYPE = "application/json"
ACCEPTED_TYPES = IMAGE_TYPES + (JSON_TYPE,)


@dataclass(frozen=True)
class PredictRequest:
    image: bytes
    top_k: int


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse(content_type: str | None, body: bytes | None, query: Mapping[str, str] | None) -> PredictRequest:
    top_k = int(request_schema.parameters(PATH, "post", query=query)["top_k"])
    kind = media_type(content_type)
    body = body or b""
    if kind not in ACCEPTED_TYPES:
        raise unsupported(f"Content-Type {kind or '(none)'!r} is not supported; send {', '.join(IMAGE_TYPES[:4])}, "
                          "application/octet-stream or application/json {\"image\": \"<base64>\"}")
    image = _from_json(body) if kind == JSON_TYPE else body
    if len(image) > MAX_IMAGE_BYTES:  # raw, or decoded from base64
        raise too_large(f"the image has {len(image)} bytes; the limit is {MAX_IMAGE_BYTES} bytes")
    if not image:
        raise bad_request("empty_body", "the request has no image bytes")
    return PredictRequest(image, top_k)


def _from_json(body: bytes) -> bytes:
    # Base64 of MAX_IMAGE_BYTES plus room for the JSON around it.
    if len(body) > MAX_IMAGE_BYTES * 4 // 3 + 4096:
        raise too_large(f"the JSON body has {len(body)} bytes; images are limited to {MAX_IMAGE_BYTES} bytes")
    text = str(request_schema.json_body(PATH, "post", request_schema.load_json(body))["image"]).strip()
    if text.startswith("data:") and "," in text:  # tolerate a data: URL from a browser
        text = text.split(",", 1)[1]
    try:
        image = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        try:  # URL-safe alphabet, as some mobile SDKs send it
            image = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("bad_base64", "the image field is not valid base64") from None
    return image
