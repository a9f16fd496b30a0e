"""chalicelib/api/predict_request.py: POST /predict's body and query, and every way they can be wrong."""
from __future__ import annotations

import base64
import json

import pytest

from chalicelib.api import predict_request
from chalicelib.api.errors import ApiError


def test_predict_request_shapes():
    assert predict_request.parse("image/jpeg", b"x", None) == predict_request.PredictRequest(b"x", 5)
    assert predict_request.parse("image/png; charset=binary", b"x", {"top_k": "2"}).top_k == 2
    body = json.dumps({"image": base64.b64encode(b"abc").decode()}).encode()
    assert predict_request.parse("application/json", body, None).image == b"abc"


@pytest.mark.parametrize("content_type,body,query,status,code", [
    ("text/plain", b"x", None, 415, "unsupported_media_type"),
    (None, b"x", None, 415, "unsupported_media_type"),
    ("image/jpeg", b"", None, 400, "empty_body"),
    ("image/jpeg", b"x", {"top_k": "0"}, 400, "bad_top_k"),
    ("image/jpeg", b"x", {"top_k": "many"}, 400, "bad_top_k"),
    ("application/json", b"{", None, 400, "bad_json"),
    ("application/json", b'{"img": "x"}', None, 400, "bad_json"),
    ("application/json", b'{"image": "@@@"}', None, 400, "bad_base64"),
    ("image/jpeg", b"x" * (predict_request.MAX_IMAGE_BYTES + 1), None, 413, "too_large"),
])
def test_predict_request_errors(content_type, body, query, status, code):
    with pytest.raises(ApiError) as caught:
        predict_request.parse(content_type, body, query)
    assert (caught.value.status, caught.value.code) == (status, code)
