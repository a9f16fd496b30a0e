"""The HTTP API fuzzed against its own OpenAPI document: schemathesis drives a real `flowers up`
on 127.0.0.1 (a real tiny model served) with generated requests, valid and invalid, plus real
JPEG and PNG photos, and judges every answer with all its checks. Pass: no 5xx; every status,
header and body the one the document describes; every request that breaks a schema refused
(4xx) and every valid one accepted; every method a route does not declare answered 405 with
`Allow`. Failures found this way stay below as regression cases."""
from __future__ import annotations

import http.client
import io
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from PIL import Image
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.hypothesis.builder import HypothesisTestConfig, HypothesisTestMode, create_test

from chalicelib.api import openapi
from local_fixtures import Up, seed_approved_model
from pipeline_fixtures import aws, sample_photos, tiny_model  # noqa: F401  (fixtures)

EXAMPLES = int(os.environ.get("FLOWERS_FUZZ_EXAMPLES", "30"))  # generated per operation, after the coverage phase's cases
# All of schemathesis' checks, as `st run --checks all` has them. The stateful ones (use_after_free,
# ensure_resource_availability, object_level_authorization) find nothing to judge in single requests; they are
# in the list all the same. Every case is sent with the home's operator token (as the CLI sends it); ignored_auth
# sends the operator routes' cases (security flowersUpToken) again without it, and expects them refused.
checks.load_all_checks()
CHECKS = list(checks.CHECKS.get_all())


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model):  # noqa: F811
    home = tmp_path_factory.mktemp("fuzz") / "home"
    version = seed_approved_model(home, tiny_model)
    up = Up(home, "--preset", "tiny_cnn", "--quiet-period", "3600")
    yield up, version
    up.stop()


# The document as the code holds it (test_openapi checks GET /openapi.json serves the same), with
# the configuration in tests/e2e/schemathesis.toml (what counts as accepting a valid photo request).
def _local_document() -> dict:
    """The document as `flowers up` honours it: no API key and no IAM locally (each operation's `security` is what
    API Gateway enforces in AWS, asserted on the template in tests/infra), so without it, or ignored_auth would
    rightly find every route answering without the credentials the document asks for."""
    document = openapi.document()
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
    document["components"].pop("securitySchemes", None)
    return document


SCHEMA = schemathesis.openapi.from_dict(_local_document(),
                                        config=SchemathesisConfig.from_path(str(Path(__file__).with_name("schemathesis.toml"))))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_api_matches_its_document(operation, served):
    up, _ = served

    def check(case):
        case.call_and_validate(base_url=up.url.rstrip("/"), headers=up.auth, checks=CHECKS)

    # schemathesis' own test builder, as its CLI runs an operation (its pytest plugin does not run on pytest 9):
    # the coverage phase's cases first, as explicit examples (each boundary, each rule of each schema broken
    # once, each method the operation does not declare), then EXAMPLES generated cases, valid and invalid.
    create_test(operation=operation, test_func=check, config=HypothesisTestConfig(
        project=SCHEMA.config, modes=[HypothesisTestMode.COVERAGE, HypothesisTestMode.FUZZING],
        settings=hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                                     phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))))()


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
        response = predict.Case(body=body, media_type=media_type, query={"top_k": 2}).call_and_validate(base_url=up.url.rstrip("/"), headers=up.auth, checks=CHECKS)
        assert response.status_code == 200 and len(response.json()["predictions"]) == 2
        assert response.json()["model"]["version"] == version
    photo = sample_photos(1)[0].read_bytes()
    response = predict.Case(body={"image": base64.b64encode(photo).decode()}, media_type="application/json").call_and_validate(
        base_url=up.url.rstrip("/"), headers=up.auth, checks=CHECKS)
    assert response.status_code == 200


def test_photos_of_a_model_get_documented_answers(served):
    """A version the fuzzer cannot guess: the seeded model's manifest, whole and a page of it."""
    up, version = served
    photos = SCHEMA["/models/{version}/photos"]["GET"]
    whole = photos.Case(path_parameters={"version": version}).call_and_validate(base_url=up.url.rstrip("/"), headers=up.auth, checks=CHECKS)
    assert whole.status_code == 200 and whole.json()["count"] == 6 and whole.json()["manifest"]["matches"] is True
    page = photos.Case(path_parameters={"version": version}, query={"offset": 5, "limit": 2}).call_and_validate(
        base_url=up.url.rstrip("/"), headers=up.auth, checks=CHECKS)
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
    response = SCHEMA[path][method].Case(**case).call_and_validate(base_url=up.url.rstrip("/"), headers=up.auth, checks=CHECKS)
    assert (response.status_code, response.json()["error"]["code"]) == answer


# What schemathesis' CLI with all its checks found accepted against the document (issue 26): an operator
# action's `reason` that is no string (kept as its Python repr) or is over its maxLength (cut to it).
# Now each body is checked with its operation's schema: refused, and nothing changed.
BAD_BODIES = [
    ("/models/{version}/approve", {"reason": ["checked", "by hand"]}, "bad_json"),
    ("/models/{version}/approve", {"reason": None}, "bad_json"),
    ("/models/{version}/reject", {"reason": "x" * 501}, "bad_json"),
    ("/models/rollback", {"reason": {"why": "bad on phones"}}, "bad_json"),
    ("/runs", {"reason": "x" * 501, "full": True}, "bad_json"),
    ("/runs", {"full": "true"}, "bad_full"),
]


@pytest.mark.parametrize("path, body, code", BAD_BODIES, ids=["approve-array", "approve-null", "reject-too-long",
                                                             "rollback-object", "runs-too-long", "runs-full-text"])
def test_operator_bodies_that_break_their_schema_are_refused_and_change_nothing(served, path, body, code):
    up, version = served
    before = up.get("models").json(), up.get("status").json()["running_job"]
    operation = SCHEMA[path]["POST"]
    case = operation.Case(path_parameters={"version": version} if "{version}" in path else {}, body=body,
                          media_type="application/json")
    response = case.call_and_validate(base_url=up.url.rstrip("/"), headers=up.auth, checks=CHECKS)
    assert (response.status_code, response.json()["error"]["code"]) == (400, code), response.text
    assert response.json()["error"]["message"].startswith("full" if code == "bad_full" else "reason")
    assert (up.get("models").json(), up.get("status").json()["running_job"]) == before


# Methods no route declares, some the standard library's server has no do_<METHOD> for (it answered those
# with a 501 HTML page), OPTIONS (Chalice's gateway answered a CORS preflight) and a lowercase one.
UNDECLARED = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "QUERY", "BREW", "get")


def test_every_undeclared_method_on_every_route_answers_405_with_allow(served):
    up, version = served
    address = urlsplit(up.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)  # one connection: keep-alive holds
    answered = 0
    for path, item in openapi.PATHS.items():
        allowed = ", ".join(method.upper() for method in item)
        for method in UNDECLARED:
            if method.lower() in item and method.isupper():
                continue
            connection.request(method, path.replace("{version}", version))
            response = connection.getresponse()
            body = response.read()
            assert (response.status, response.getheader("Allow")) == (405, allowed), (method, path, response.status, body[:200])
            assert response.getheader("Content-Type") == "application/json" and response.getheader("Cache-Control") == "no-store"
            if method != "HEAD":
                assert json.loads(body)["error"]["code"] == "method_not_allowed", (method, path)
            answered += 1
    connection.close()
    assert answered == len(openapi.PATHS) * (len(UNDECLARED) - 1)  # each route declares one method
