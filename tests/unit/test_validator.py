"""chalicelib/api/validator.py (the JSON Schema subset the API checks requests with) and
chalicelib/api/request_schema.py (parameters and bodies read with the document's schemas).

The validator is checked against a reference implementation, jsonschema_rs (what schemathesis
judges answers with; a test dependency only), on generated values for every schema of the
OpenAPI document: the two must agree on what is valid."""
from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.api import openapi, request_schema, validator
from chalicelib.api.errors import ApiError


def _walk(schema: Any):
    """Every (sub)schema, depth first."""
    if isinstance(schema, dict):
        yield schema
        for key, part in schema.items():
            if key in ("properties",):
                for one in part.values():
                    yield from _walk(one)
            elif key in ("items", "additionalProperties"):
                yield from _walk(part)
            elif key == "oneOf":
                for one in part:
                    yield from _walk(one)


PARAMETERS = {f"{method.upper()} {path} {p['name']}": p["schema"]
              for path, item in openapi.PATHS.items() for method, op in item.items() for p in op.get("parameters", [])}
BODIES = {f"{method.upper()} {path}": op["requestBody"]["content"]["application/json"]["schema"]
          for path, item in openapi.PATHS.items() for method, op in item.items()
          if "application/json" in op.get("requestBody", {}).get("content", {})}
ALL = {**{f"components {name}": schema for name, schema in openapi.SCHEMAS.items()}, **PARAMETERS, **BODIES}
NAMES = sorted({name for schema in openapi.SCHEMAS.values() for one in _walk(schema) for name in one.get("properties", {})})

# Boundaries of the document's rules: its bounds, lengths, patterns and enums, and JSON's kinds.
BOUNDARIES = [None, True, False, 0, 1, 1.0, 1.5, -1, 5, 500, 501, 1000, 1001, 5000, 5001, 10**9, 10**9 + 1, "", "x",
              "0123456789abcdef", "0123456789abcdef\n", "0123456789ABCDEF", "0123456789abcde", "production", "imagenet",
              "approved", "é" * 500, "é" * 501, [], [1], {}]
_scalars = (st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False, allow_infinity=False)
            | st.sampled_from(BOUNDARIES) | st.text(max_size=20))
VALUES = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=5), inner, max_size=6), max_leaves=30)


def test_the_whole_document_is_in_the_validators_subset():
    for name, schema in ALL.items():
        validator.check_schema(schema, openapi.SCHEMAS)  # raises UnknownKeyword for a keyword it would not check
    with pytest.raises(validator.UnknownKeyword):
        validator.check_schema({"type": "integer", "exclusiveMinimum": 0}, openapi.SCHEMAS)
    with pytest.raises(validator.UnknownKeyword):
        validator.problem({"type": "integer", "multipleOf": 2}, 3, openapi.SCHEMAS)
    with pytest.raises(validator.UnknownKeyword):
        validator.check_schema({"$ref": "#/components/schemas/Nothing"}, openapi.SCHEMAS)


REFERENCE = {name: jsonschema_rs.validator_for({**schema, "components": {"schemas": openapi.SCHEMAS}}) for name, schema in ALL.items()}


def test_the_validator_agrees_with_a_reference_implementation_at_every_boundary():
    values = [*BOUNDARIES, *({name: value} for name in NAMES for value in BOUNDARIES),
              *({name: {"x": value}} for name in NAMES for value in BOUNDARIES), *([value] for value in BOUNDARIES)]
    for name, schema in ALL.items():
        for value in values:
            assert (validator.problem(schema, value, openapi.SCHEMAS) is None) == REFERENCE[name].is_valid(value), (name, value)
    # Each rule alone: every schema inside the document's, whole and keyword by keyword, at the boundaries.
    for name, top in ALL.items():
        for whole in _walk(top):
            sized = [[None] * (n + d) for key in ("minItems", "maxItems") if key in whole for n in [whole[key]] for d in (-1, 0, 1)]
            for schema in [whole, *({key: rule} for key, rule in whole.items() if key not in validator.ANNOTATIONS)]:
                reference = jsonschema_rs.validator_for({**schema, "components": {"schemas": openapi.SCHEMAS}})
                for value in [*BOUNDARIES, *sized]:
                    assert (validator.problem(schema, value, openapi.SCHEMAS) is None) == reference.is_valid(value), (name, schema, value)


@given(value=VALUES)
@settings(max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_the_validator_agrees_with_a_reference_implementation(value):
    for name, schema in ALL.items():
        assert (validator.problem(schema, value, openapi.SCHEMAS) is None) == REFERENCE[name].is_valid(value), (name, value)


def test_problems_say_where_and_what():
    body = openapi.SCHEMAS["RunRequest"]
    assert validator.problem(body, {"reason": "x" * 501}, {}) == validator.Problem(
        ("reason",), "maxLength", "must be at most 500 characters long, not 501")
    assert validator.problem(body, {"full": 0}, {}) == validator.Problem(("full",), "type", "must be true or false (a JSON boolean)")
    assert validator.problem(openapi.SCHEMAS["Models"], {"models": [{}]}, openapi.SCHEMAS).where == "models[0].created_at"
    limit = openapi.PATHS["/models"]["get"]["parameters"][0]["schema"]
    assert validator.problem(limit, 0, {}).message == validator.problem(limit, "x", {}).message == "must be an integer between 1 and 500"
    version = openapi.PATHS["/models/{version}/photos"]["get"]["parameters"][0]["schema"]
    assert validator.problem(version, "0123456789abcdef\n", {}).keyword == "pattern"  # JSON Schema's $, not Python's


def _error(call) -> tuple[int, str, str]:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value.status, caught.value.code, caught.value.message


def test_parameters_are_typed_defaulted_and_refused_as_bad_name():
    photos = "/models/{version}/photos"
    assert request_schema.parameters(photos, "GET", {"version": "00000000000000a1"}, None) == {
        "version": "00000000000000a1", "offset": 0, "limit": openapi.PATHS[photos]["get"]["parameters"][2]["schema"]["default"]}
    assert request_schema.parameters(photos, "GET", {"version": "00000000000000a1"}, {"offset": "5", "limit": "2", "x": "y"}) == {
        "version": "00000000000000a1", "offset": 5, "limit": 2}
    assert _error(lambda: request_schema.parameters(photos, "GET", {"version": "nope"})) == (
        400, "bad_version", "a model version is 16 hexadecimal characters")
    assert _error(lambda: request_schema.parameters("/models", "GET", None, {"limit": "501"})) == (
        400, "bad_limit", "limit must be an integer between 1 and 500")
    assert _error(lambda: request_schema.parameters("/predict", "POST", None, {"top_k": "zero"}))[:2] == (400, "bad_top_k")
    # A required parameter names what is asked for: without it there is nothing to find (the route documents 404).
    assert _error(lambda: request_schema.parameters("/status/label-issues/thumbnail", "GET", None, {}))[:2] == (404, "not_found")


def test_bodies_get_their_defaults_and_are_refused_as_bad_json_or_their_fields_code():
    assert request_schema.json_body("/runs", "POST", {}) == {"full": False}
    assert request_schema.json_body("/runs", "POST", {"reason": "drifted", "full": True}) == {"reason": "drifted", "full": True}
    assert request_schema.json_body("/models/rollback", "POST", {"extra": 1}) == {"extra": 1}  # clients may send more
    assert _error(lambda: request_schema.json_body("/runs", "POST", {"full": "false"})) == (
        400, "bad_full", 'full must be true or false (a JSON boolean), not "false"')
    assert _error(lambda: request_schema.json_body("/models/{version}/approve", "POST", {"reason": ["a"]})) == (
        400, "bad_json", 'reason must be a string, not ["a"]')
    assert _error(lambda: request_schema.json_body("/models/{version}/reject", "POST", {"reason": "é" * 501})) == (
        400, "bad_json", "reason must be at most 500 characters long, not 501")
    assert _error(lambda: request_schema.json_body("/models/rollback", "POST", [1])) == (
        400, "bad_json", "the body must be a JSON object, not [1]")
    assert _error(lambda: request_schema.json_body("/predict", "POST", {"img": "x"})) == (400, "bad_json", "image is required")
