"""POST /predict and the model routes through Chalice's test client, with a real converted
tiny model registered in moto; every error path; the swap; no TensorFlow on this path."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import textwrap

import pytest
from chalice.test import Client
from PIL import Image

import app as chalice_app
from chalicelib import services
from chalicelib.pipeline.records import ModelEntry
from pipeline_fixtures import ROOT, aws, sample_photos, tiny_model  # noqa: F401  (fixtures)

VERSION = "00000000000000a1"


JSON = {"Content-Type": "application/json"}


def register(world, folder, version=VERSION, approve=True, tamper=False):
    """Put a converted model folder where conversion writes it and register it (as the pipeline does)."""
    prefix = f"models/{version}/"
    for name in ("model.tflite", "labels.txt", "metadata.json"):
        body = (folder / name).read_bytes()
        if tamper and name == "model.tflite":
            body = body[:-1] + bytes([body[-1] ^ 1])
        world.s3.put_object(Bucket=world.artifacts, Key=prefix + name, Body=body)
    metadata = json.loads((folder / "metadata.json").read_text())
    uri = f"s3://{world.artifacts}/{prefix}"
    registry = services.get().registry
    registry.register(ModelEntry(version, "pending", 0, model_uri=uri + "model.tflite", labels_uri=uri + "labels.txt",
                                 metadata_uri=uri + "metadata.json", sha256=metadata["model"]["sha256"],
                                 size_bytes=metadata["model"]["size_bytes"], test_accuracy=0.9, dataset_version=version), metadata)
    if approve:
        registry.set_status(version, "approved", "test")


@pytest.fixture
def client(aws):  # noqa: F811
    with Client(chalice_app.app) as test_client:
        yield test_client


def photo_bytes(fmt="JPEG"):
    data = sample_photos(1)[0].read_bytes()
    if fmt == "JPEG":
        return data
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, fmt)
    return out.getvalue()


def error_of(response):
    return response.status_code, response.json_body["error"]["code"]


def test_no_model_yet_is_503_with_retry_after(client):
    response = client.http.post("/predict", headers={"Content-Type": "image/jpeg"}, body=photo_bytes())
    assert error_of(response) == (503, "no_model") and response.headers["Retry-After"] == "60"
    response = client.http.get("/models/current")
    assert response.status_code == 503 and response.headers["Retry-After"] == "60"


def test_predict_raw_and_json_with_a_real_model(aws, client, tiny_model, capsys):  # noqa: F811
    register(aws, tiny_model)
    labels = json.loads((tiny_model / "metadata.json").read_text())["labels"]
    for fmt, content_type in (("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("BMP", "image/bmp")):
        response = client.http.post("/predict", headers={"Content-Type": content_type}, body=photo_bytes(fmt))
        assert response.status_code == 200, response.body
        body = response.json_body
        assert body["model"]["version"] == VERSION and body["model"]["created_at"]
        scores = [p["score"] for p in body["predictions"]]
        assert [p["label"] for p in body["predictions"]] and set(p["label"] for p in body["predictions"]) <= set(labels)
        assert scores == sorted(scores, reverse=True) and len(scores) == min(5, len(labels))
        assert sum(scores) == pytest.approx(1.0, abs=1e-3)
    encoded = base64.b64encode(photo_bytes()).decode()
    response = client.http.post("/predict?top_k=1", headers={"Content-Type": "application/json"},
                                body=json.dumps({"image": encoded}).encode())
    assert response.status_code == 200 and len(response.json_body["predictions"]) == 1
    # The same pixels as training: LiteRT on load_pixels() output gives the same answer as the API.
    from chalicelib.contract.imaging import load_pixels
    from chalicelib.serving.predictor import top

    model = services.get().predictor.model
    expected = top(model.probabilities(load_pixels(photo_bytes(), model.image_size).pixels), labels, 1)
    assert response.json_body["predictions"] == expected
    assert encoded[:40] not in capsys.readouterr().out  # image bytes never reach the logs


@pytest.mark.parametrize("headers,body,query,expected", [
    ({"Content-Type": "text/plain"}, b"hello", "", (415, "unsupported_media_type")),
    ({"Content-Type": "image/gif"}, b"GIF89a", "", (415, "unsupported_media_type")),
    ({"Content-Type": "image/jpeg"}, b"not an image at all", "", (400, "not_an_image")),
    ({"Content-Type": "image/jpeg"}, b"", "", (400, "empty_body")),
    ({"Content-Type": "image/jpeg"}, None, "?top_k=zero", (400, "bad_top_k")),
    ({"Content-Type": "image/jpeg"}, None, "?top_k=-1", (400, "bad_top_k")),
    ({"Content-Type": "application/json"}, b'{"image": "%%%"}', "", (400, "bad_base64")),
    ({"Content-Type": "application/json"}, b"{not json", "", (400, "bad_json")),
    ({"Content-Type": "application/octet-stream"}, b"\x00" * (4 * 1024 * 1024 + 1), "", (413, "too_large")),
])
def test_bad_requests_are_json_errors_never_500(aws, client, tiny_model, headers, body, query, expected):  # noqa: F811
    register(aws, tiny_model)
    response = client.http.post("/predict" + query, headers=headers, body=photo_bytes() if body is None else body)
    assert error_of(response) == expected


def test_corrupt_and_truncated_images(aws, client, tiny_model):  # noqa: F811
    register(aws, tiny_model)
    data = photo_bytes()
    for broken in (data[: len(data) // 2], data[:200]):
        response = client.http.post("/predict", headers={"Content-Type": "image/jpeg"}, body=broken)
        assert response.status_code == 400 and response.json_body["error"]["code"] in ("corrupt", "not_an_image")
    tiny = io.BytesIO()
    Image.new("RGB", (8, 8)).save(tiny, "PNG")
    response = client.http.post("/predict", headers={"Content-Type": "image/png"}, body=tiny.getvalue())
    assert error_of(response) == (400, "too_small")


def test_checksum_mismatch_is_never_served(aws, client, tiny_model):  # noqa: F811
    register(aws, tiny_model, tamper=True)
    response = client.http.post("/predict", headers={"Content-Type": "image/jpeg"}, body=photo_bytes())
    assert error_of(response) == (503, "no_model")


def test_new_approved_model_swaps_in_after_refresh(aws, client, tiny_model):  # noqa: F811
    register(aws, tiny_model)
    predictor = services.get().predictor
    clock = [0.0]
    predictor._clock = lambda: clock[0]
    first = client.http.post("/predict", headers={"Content-Type": "image/jpeg"}, body=photo_bytes()).json_body
    held = predictor.model  # a request "in flight" holds this reference
    register(aws, tiny_model, version="00000000000000b2")
    clock[0] += 30
    assert client.http.post("/predict", headers={"Content-Type": "image/jpeg"}, body=photo_bytes()).json_body["model"]["version"] == VERSION
    clock[0] += 31
    second = client.http.post("/predict", headers={"Content-Type": "image/jpeg"}, body=photo_bytes()).json_body
    assert second["model"]["version"] == "00000000000000b2" and first["model"]["version"] == VERSION
    from chalicelib.contract.imaging import load_pixels

    assert held.probabilities(load_pixels(photo_bytes(), held.image_size).pixels).shape == (len(held.labels),)  # still usable


@pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
def test_model_routes_and_manual_actions(aws, client, tiny_model):  # noqa: F811
    register(aws, tiny_model)
    register(aws, tiny_model, version="00000000000000b2")
    current = client.http.get("/models/current").json_body
    assert current["version"] == "00000000000000b2"
    metadata = json.loads((tiny_model / "metadata.json").read_text())
    assert current["labels"] == metadata["labels"] and current["input"]["shape"] == [1, 32, 32, 3]
    assert current["sha256"] == hashlib.sha256((tiny_model / "model.tflite").read_bytes()).hexdigest()
    assert current["download_url"].startswith("https://") and "Signature" in current["download_url"]

    # The caller: Chalice's test gateway has no IAM identity (tests/integration/test_retrain_on_demand.py signs requests).
    unknown = {"principal": "unknown", "kind": "iam", "via": "http"}
    assert client.http.post("/models/rollback", headers=JSON).json_body == {"rejected": "00000000000000b2", "current": VERSION,
                                                                           "by": unknown}
    assert client.http.get("/models/current").json_body["version"] == VERSION
    assert error_of(client.http.post("/models/rollback", headers=JSON)) == (409, "conflict")
    approved = client.http.post("/models/00000000000000b2/approve", headers={"Content-Type": "application/json"},
                                body=b'{"reason": "checked by hand"}').json_body
    assert approved == {"version": "00000000000000b2", "status": "approved", "reason": "checked by hand (by unknown (iam, http))",
                        "by": unknown}
    assert client.http.post(f"/models/{VERSION}/reject", headers=JSON).json_body["status"] == "rejected"
    assert error_of(client.http.post("/models/ffffffffffffffff/approve", headers=JSON)) == (404, "not_found")
    assert error_of(client.http.post("/models/nope/approve", headers=JSON)) == (400, "bad_version")
    listed = client.http.get("/models").json_body["models"]
    assert [(m["version"], m["status"]) for m in listed] == [("00000000000000b2", "approved"), (VERSION, "rejected")]
    # What a page of another site could send: a simple form post, or a fetch marked as cross-site.
    assert error_of(client.http.post("/models/rollback")) == (415, "unsupported_media_type")
    assert error_of(client.http.post("/models/rollback", headers={"Content-Type": "text/plain"}, body=b"{}")) == (415, "unsupported_media_type")
    assert error_of(client.http.post("/models/rollback", headers={**JSON, "Origin": "https://evil.example", "Host": "api.example"})) == (
        403, "cross_site_request")
    assert error_of(client.http.post("/models/rollback", headers={**JSON, "Sec-Fetch-Site": "same-site"})) == (403, "cross_site_request")
    assert client.http.get("/models/current").json_body["version"] == "00000000000000b2"  # nothing was rolled back
    assert error_of(client.http.get("/models?limit=x")) == (400, "bad_limit")
    status = client.http.get("/status").json_body
    assert status["pending_uploads"] == 0 and status["running_job"] is None


def test_prediction_path_never_imports_tensorflow(tiny_model):  # noqa: F811
    """A fresh process imports app and answers a prediction; TensorFlow must never be loaded."""
    script = textwrap.dedent(f"""
        import sys, json, pathlib
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]
        import app
        from chalicelib.api import handlers
        from chalicelib import services
        from chalicelib.serving.predictor import Predictor
        folder = pathlib.Path({str(tiny_model)!r})
        from chalicelib.pipeline.records import ModelEntry
        meta = json.loads((folder / "metadata.json").read_text())
        class Source:
            def production_id(self): return "v1"
            def production(self): return ModelEntry("v1", "approved", 0, model_uri="model.tflite", metadata_uri="metadata.json",
                                                     sha256=meta["model"]["sha256"])
            def read(self, uri): return (folder / uri).read_bytes()
        svc = services.Services.__new__(services.Services)
        svc.__dict__["predictor"] = Predictor(Source())
        svc.__dict__["settings"] = type("S", (), {{"model_refresh_seconds": 60}})()
        services._services = svc
        from pipeline_fixtures import sample_photos
        answer = handlers.predict("image/jpeg", sample_photos(1)[0].read_bytes(), {{}})
        assert answer["predictions"], answer
        print("tensorflow" in sys.modules, "keras" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False False"


def served_copy(folder, tmp_path, **changes):
    """The converted model's files with metadata.json changed (as served; the .tflite is the same)."""
    import shutil

    copy = tmp_path / "served"
    shutil.copytree(folder, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata.update(changes)
    (copy / "metadata.json").write_text(json.dumps(metadata))
    return copy


def grey_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(out, "JPEG")
    return out.getvalue()


def test_predict_answers_label_and_threshold(aws, client, tiny_model):  # noqa: F811
    register(aws, tiny_model)
    threshold = json.loads((tiny_model / "metadata.json").read_text())["threshold"]
    body = client.http.post("/predict", headers={"Content-Type": "image/jpeg"}, body=photo_bytes()).json_body
    assert body["threshold"] == threshold and isinstance(threshold, float)
    top = body["predictions"][0]
    assert body["label"] == (top["label"] if top["score"] >= threshold else None)


def test_a_grey_image_below_a_high_threshold_is_not_recognised(aws, client, tiny_model, tmp_path):  # noqa: F811
    register(aws, served_copy(tiny_model, tmp_path, threshold=0.999))
    body = client.http.post("/predict?top_k=2", headers={"Content-Type": "image/jpeg"}, body=grey_jpeg()).json_body
    assert body["label"] is None and body["threshold"] == 0.999
    assert len(body["predictions"]) == 2 and body["predictions"][0]["score"] < 0.999  # the list is unchanged


def test_a_model_without_threshold_answers_the_top_class(aws, client, tiny_model, tmp_path):  # noqa: F811
    old = served_copy(tiny_model, tmp_path)
    metadata = json.loads((old / "metadata.json").read_text())
    del metadata["threshold"]
    (old / "metadata.json").write_text(json.dumps(metadata))
    register(aws, old)
    body = client.http.post("/predict", headers={"Content-Type": "image/jpeg"}, body=grey_jpeg()).json_body
    assert body["threshold"] is None and body["label"] == body["predictions"][0]["label"]


def test_the_background_class_other_answers_null(aws, client, tiny_model, tmp_path):  # noqa: F811
    register(aws, tiny_model)
    first = client.http.post("/predict", headers={"Content-Type": "image/jpeg"}, body=grey_jpeg()).json_body
    labels = json.loads((tiny_model / "metadata.json").read_text())["labels"]
    # the same model with its top class for this image named `other`, and no threshold to hide behind
    renamed = ["other" if label == first["predictions"][0]["label"] else label for label in labels]
    register(aws, served_copy(tiny_model, tmp_path, labels=renamed, threshold=None), version="00000000000000b2")
    services.get().predictor.refresh()
    body = client.http.post("/predict", headers={"Content-Type": "image/jpeg"}, body=grey_jpeg()).json_body
    assert body["model"]["version"] == "00000000000000b2"
    assert body["predictions"][0]["label"] == "other" and body["label"] is None and body["threshold"] is None


# Nesting the parser itself cannot take (it recursed into a RecursionError, answered 500), and nesting it takes but no
# body the API declares has (refused before the schema's validator walks it).
DEEP_BODIES = {"recursion": b"[" * 30000 + b"]" * 30000, "nested": b'{"reason": ' + b"[" * 40 + b"]" * 40 + b"}",
               "nested-image": b'{"image": "AAAA", "x": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}"}


@pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
@pytest.mark.parametrize("shape", sorted(DEEP_BODIES))
@pytest.mark.parametrize("path", ["/predict", f"/models/{VERSION}/approve", f"/models/{VERSION}/reject", "/models/rollback", "/runs"])
def test_deeply_nested_json_bodies_are_bad_json_never_500(aws, client, tiny_model, path, shape):  # noqa: F811
    register(aws, tiny_model, approve=False)
    before = client.http.get("/models").json_body
    response = client.http.post(path, headers=JSON, body=DEEP_BODIES[shape])
    assert error_of(response) == (400, "bad_json"), response.body[:300]
    assert client.http.get("/models").json_body == before  # nothing was done
