"""GET /openapi.json serves the document (tests/unit/test_openapi.py) with its base path."""
from __future__ import annotations

from chalice.test import Client

import app as chalice_app
from chalicelib.api import openapi


def test_get_openapi_json_serves_the_document_with_its_base_path(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWERS_MODE", "local")
    monkeypatch.setenv("FLOWERS_HOME", str(tmp_path))
    with Client(chalice_app.app) as client:
        response = client.http.get("/openapi.json")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    served = response.json_body
    assert served["openapi"] == "3.1.0" and served["paths"].keys() == openapi.PATHS.keys()
    assert served["servers"] == [{"url": "/"}]
