"""The web page's routes (tests/e2e/test_local_web.py) in aws mode: Chalice's test client over moto."""
from __future__ import annotations

from pipeline_fixtures import aws, tiny_model  # noqa: F401  (fixtures)


def test_page_and_confusion_matrix_routes_serve_in_aws_mode_too(aws, tiny_model):  # noqa: F811
    """The same routes through Chalice's test client over moto (the cloud's adapters)."""
    from chalice.test import Client

    import app as chalice_app
    from test_predict import VERSION, register

    register(aws, tiny_model)
    with Client(chalice_app.app) as client:
        page = client.http.get("/")
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html") and b"Try a photo" in page.body
        picture = client.http.get(f"/models/{VERSION}/confusion-matrix", headers={"Accept": "image/png"})
        assert picture.status_code == 200 and picture.body[:4] == b"\x89PNG"
        missing = client.http.get("/models/00000000000000ff/confusion-matrix", headers={"Accept": "image/png"})
        assert missing.status_code == 404 and missing.json_body["error"]["code"] == "not_found"


def test_every_answer_in_aws_mode_carries_the_security_headers(aws, tiny_model):  # noqa: F811
    """app.py's middleware: the page (its own policy, inline blocks by hash), a picture, JSON, and errors, Chalice's too."""
    from chalice.test import Client

    import app as chalice_app
    from chalicelib.api import security_headers, web
    from test_predict import VERSION, register

    register(aws, tiny_model)
    with Client(chalice_app.app) as client:
        answers = {"page": client.http.get("/"), "png": client.http.get(f"/models/{VERSION}/confusion-matrix"),
                   "json": client.http.get("/models"), "404": client.http.get("/models/00000000000000ff/photos"),
                   "400": client.http.get("/models?limit=0"),
                   "415": client.http.post("/models/rollback", headers={"Content-Type": "text/plain"}, body=b"{}")}
        for what, answer in answers.items():
            assert answer.headers["X-Content-Type-Options"] == "nosniff" and answer.headers["Referrer-Policy"] == "no-referrer", what
            policy = web.page_headers()["Content-Security-Policy"] if what == "page" else security_headers.POLICY
            assert answer.headers["Content-Security-Policy"] == policy, what
        assert answers["400"].status_code == 400 and answers["415"].status_code == 415
