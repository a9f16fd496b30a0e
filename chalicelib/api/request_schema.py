"""A request's parameters and JSON body, read and checked with the schemas of its operation in
the OpenAPI document (chalicelib/api/openapi.py): one description of what the API accepts,
published at GET /openapi.json and enforced here, so the two cannot drift.

Refusals keep the API's error shape and codes: a parameter that breaks its schema is 400
`bad_<name>` (bad_top_k, bad_limit, bad_offset, bad_version); a missing required one is 404
`not_found` (a required parameter names what is asked for: without it there is nothing to
find); a JSON body that breaks its schema is 400 `bad_json`, or the code of the field at fault
where the operation documents one (`bad_full`).
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from chalicelib.api import openapi, validator
from chalicelib.api.errors import bad_request, not_found

# A body field refused with a code of its own (the operation's documented 400 names it); other fields: bad_json.
FIELD_CODES = {"full": "bad_full"}
# A parameter's refusal in the words its users know (the CLI prints them), where the schema's would be a regex.
PARAMETER_WORDS = {"version": "a model version is 16 hexadecimal characters"}
_SHOWN = frozenset({"type", "enum", "pattern", "minimum", "maximum", "oneOf"})
# The deepest JSON body accepted: every body the document declares is one flat object, so this is room to
# spare; deeper is 400 bad_json before the parser or the validator recurses (a RecursionError would be a 500).
MAX_JSON_DEPTH = 32


def operation(path: str, method: str) -> openapi.Schema:
    """The operation the document declares for a route (Chalice's path template, e.g. /models/{version}/photos)."""
    return openapi.PATHS[path][method.lower()]


def parameters(path: str, method: str, path_values: Mapping[str, str] | None = None,
               query: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every parameter the operation declares, by name: the request's value as its schema types it (a query's
    "5" is the integer 5), else the schema's default; an undeclared query parameter is ignored."""
    found: dict[str, Any] = {}
    for parameter in operation(path, method).get("parameters", []):
        name, schema = parameter["name"], parameter["schema"]
        raw = {"path": path_values, "query": query}[parameter["in"]]
        text = None if raw is None else raw.get(name)
        if text is None:
            if parameter.get("required"):
                raise not_found(f"the {name} is missing")
            if "default" in schema:
                found[name] = schema["default"]
            continue
        value = _typed(str(text), schema)
        problem = validator.problem(schema, value, openapi.SCHEMAS)
        if problem:
            raise bad_request(f"bad_{name}", PARAMETER_WORDS.get(name) or f"{name} {problem.message}")
        found[name] = value
    return found


def load_json(raw: bytes) -> Any:
    """A request body's JSON document; 400 bad_json when it is not JSON or nests deeper than MAX_JSON_DEPTH.
    Every JSON body the API takes is parsed here."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # the parser recurses: deep nesting exhausts the stack
        raise bad_request("bad_json", "the body is not valid JSON") from None
    if _depth_over(document, MAX_JSON_DEPTH):
        raise bad_request("bad_json", f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    return document


def _depth_over(document: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` (walked without recursion)."""
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            if depth + 1 > limit:
                return True
            pending.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return False


def json_body(path: str, method: str, document: Any) -> dict[str, Any]:
    """The operation's JSON body (already parsed), checked against its schema; absent fields get their defaults."""
    schema = operation(path, method)["requestBody"]["content"]["application/json"]["schema"]
    problem = validator.problem(schema, document, openapi.SCHEMAS)
    if problem:
        field = str(problem.path[0]) if problem.path else ""
        # What was sent, where its kind is at fault (a length problem says the length instead).
        shown = f", not {_shown(problem, document)}" if problem.keyword in _SHOWN else ""
        raise bad_request(FIELD_CODES.get(field, "bad_json"), f"{problem.where or 'the body'} {problem.message}{shown}")
    if "$ref" in schema:
        schema = validator.resolve(schema, openapi.SCHEMAS)
    defaults = {name: item["default"] for name, item in schema.get("properties", {}).items() if "default" in item}
    return {**defaults, **document}


def _typed(text: str, schema: Mapping[str, Any]) -> Any:
    """A parameter's text as its schema's type; left as text when it is not one (the schema then refuses it)."""
    if schema.get("type") == "integer":
        try:
            return int(text)
        except ValueError:
            return text
    return text


def _shown(problem: validator.Problem, document: Any) -> str:
    value = document
    for step in problem.path:
        value = value[step]
    return json.dumps(value)[:100]
