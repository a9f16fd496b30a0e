"""The API's OpenAPI document: every route, method and status the code answers is in it. (GET /openapi.json
serves it: tests/integration/test_openapi_served.py; tests/e2e/test_fuzz_api.py checks real responses against it.)"""
from __future__ import annotations

import re


import app as chalice_app
from chalicelib.api import handlers, openapi, predict_request


def _routes() -> dict[str, set[str]]:
    return {path: {method.lower() for method in entries} for path, entries in chalice_app.app.routes.items()}


def test_every_route_and_method_is_documented_and_nothing_else():
    documented = {path: set(item) for path, item in openapi.PATHS.items()}
    assert documented == _routes()


def test_every_operation_documents_its_errors_in_one_shape():
    for path, item in openapi.PATHS.items():
        for method, operation in item.items():
            assert "500" in operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (path, status)
            for name in re.findall(r"{(\w+)}", path):
                assert any(p["name"] == name and p["in"] == "path" for p in operation.get("parameters", [])), (path, name)
            # What chalicelib/api/request_schema.py reads a request's parameters from.
            assert {p["in"] for p in operation.get("parameters", [])} <= {"path", "query"}, (path, method)


def test_the_statuses_the_predict_handler_maps_are_documented():
    responses = openapi.PATHS["/predict"]["post"]["responses"]
    answered = {400, 413, 415, 503, *handlers._IMAGE_ERRORS.values()}
    assert {str(s) for s in answered} <= set(responses)
    body = openapi.PATHS["/predict"]["post"]["requestBody"]["content"]
    assert {k for k in body} == {t for t in predict_request.ACCEPTED_TYPES if t not in ("image/jpg", "image/x-ms-bmp")}
