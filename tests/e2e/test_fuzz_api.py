"""The HTTP API fuzzed against its own OpenAPI document: schemathesis drives a real `flowers up`
on 127.0.0.1 (a real tiny model served) with generated requests, valid and invalid, plus real
JPEG and PNG photos. Pass: no 5xx, and every status, header and body is the one the document
describes. Failures found this way stay below as regression cases."""
from __future__ import annotations

import io
import os

import pytest
import schemathesis
from schemathesis import GenerationMode, checks
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from chalicelib.api import openapi
from local_fixtures import Up, seed_approved_model
from pipeline_fixtures import aws, sample_photos, tiny_model  # noqa: F401  (fixtures)

EXAMPLES = int(os.environ.get("FLOWERS_FUZZ_EXAMPLES", "60"))  # per operation: about 400 requests in all, well under a minute here
# Pass: no 5xx, and the status, content type, headers and body the document describes. Not checked:
# that every schema-valid request is accepted (schemathesis' positive_data_acceptance): bytes can be
# a valid "binary string" and still be no photo of 32 px or more, which is a documented 400.
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance, checks.negative_data_rejection]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model):  # noqa: F811
    home = tmp_path_factory.mktemp("fuzz") / "home"
    version = seed_approved_model(home, tiny_model)
    up = Up(home, "--preset", "tiny_cnn", "--quiet-period", "3600")
    yield up, version
    up.stop()


# The document as the code holds it (test_openapi checks GET /openapi.json serves the same).
# schemathesis' own pytest plugin does not run on pytest 9, so each operation is a hypothesis test here.
SCHEMA = schemathesis.openapi.from_dict(openapi.document())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_api_matches_its_document(operation, served):
    up, _ = served

    @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(base_url=up.url.rstrip("/"), checks=CHECKS)

    check()


def _png(mode: str, size: tuple[int, int] = (48, 40)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 200 if mode in ("L", "I;16", "P") else (200, 30, 60, 128)[: len(mode)]).save(out, format="PNG")
    return out.getvalue()


def test_real_photos_get_documented_answers(served):
    """Valid bodies, which random bytes almost never are: real JPEGs, PNGs of odd modes, base64 JSON."""
    import base64

    up, version = served
    predict = SCHEMA["/predict"]["POST"]
    bodies = [(photo.read_bytes(), "image/jpeg") for photo in sample_photos(3)]
    bodies += [(_png(mode), "image/png") for mode in ("RGBA", "LA", "I;16", "P", "L")]
    for body, media_type in bodies:
        response = predict.Case(body=body, media_type=media_type, query={"top_k": 2}).call_and_validate(base_url=up.url.rstrip("/"), checks=CHECKS)
        assert response.status_code == 200 and len(response.json()["predictions"]) == 2
        assert response.json()["model"]["version"] == version
    photo = sample_photos(1)[0].read_bytes()
    response = predict.Case(body={"image": base64.b64encode(photo).decode()}, media_type="application/json").call_and_validate(
        base_url=up.url.rstrip("/"), checks=CHECKS)
    assert response.status_code == 200


def test_photos_of_a_model_get_documented_answers(served):
    """A version the fuzzer cannot guess: the seeded model's manifest, whole and a page of it."""
    up, version = served
    photos = SCHEMA["/models/{version}/photos"]["GET"]
    whole = photos.Case(path_parameters={"version": version}).call_and_validate(base_url=up.url.rstrip("/"), checks=CHECKS)
    assert whole.status_code == 200 and whole.json()["count"] == 6 and whole.json()["manifest"]["matches"] is True
    page = photos.Case(path_parameters={"version": version}, query={"offset": 5, "limit": 2}).call_and_validate(
        base_url=up.url.rstrip("/"), checks=CHECKS)
    assert [f["key"] for f in page.json()["files"]] == ["roses/2.jpg"] and page.json()["next_offset"] is None


def _jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 200, 40)).save(out, format="JPEG")
    return out.getvalue()


# What the fuzzer found answered otherwise than documented, replayed as sent: (operation, case, answer).
REGRESSIONS = [
    # An operator action with no body and no Content-Type: 415, which the document first did not list.
    (("/models/rollback", "POST"), {}, (415, "unsupported_media_type")),
    # A schema-valid JPEG of 1x1 px: a documented 400, not an accepted photo.
    (("/predict", "POST"), {"body": _jpeg((1, 1)), "media_type": "image/jpeg"}, (400, "too_small")),
]


@pytest.mark.parametrize("operation, case, answer", REGRESSIONS, ids=["rollback-without-json", "predict-1px-jpeg"])
def test_found_failures_stay_fixed(served, operation, case, answer):
    up, _ = served
    path, method = operation
    response = SCHEMA[path][method].Case(**case).call_and_validate(base_url=up.url.rstrip("/"), checks=CHECKS)
    assert (response.status_code, response.json()["error"]["code"]) == answer
