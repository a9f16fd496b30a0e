"""A JSON Schema validator for the keywords the API's OpenAPI document uses, no more.

Why our own and not the `jsonschema` package: the Lambda zip takes no new dependency (jsonschema
brings attrs, referencing and the compiled rpds-py), and the document needs a dozen keywords.
A keyword outside the subset is refused, not ignored (`UnknownKeyword`; tests walk the whole
document with `check_schema`), so a schema cannot promise a rule that nothing enforces.

Semantics are JSON Schema 2020-12's, as OpenAPI 3.1 uses it: `integer` is a number with no
fraction (true and false are not numbers), lengths count code points, `pattern` is searched
(not matched) and its `$` ends the string (Python's would also match before a final newline).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

Schema = Mapping[str, Any]
REF_PREFIX = "#/components/schemas/"
# Keywords that say something and check nothing.
ANNOTATIONS = frozenset({"description", "default", "format", "title"})
KEYWORDS = frozenset({"$ref", "type", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "properties",
                      "required", "additionalProperties", "items", "minItems", "maxItems", "oneOf"})
_WORDS = {"object": "a JSON object", "array": "an array", "string": "a string", "integer": "an integer",
          "number": "a number", "boolean": "true or false (a JSON boolean)", "null": "null"}
_PYTHON = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


class UnknownKeyword(ValueError):
    """A schema uses a keyword this validator does not check: a programming error, found by the tests."""


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with a value: where (keys and indexes from the top) and what it must be."""

    path: tuple[str | int, ...]
    keyword: str  # the rule broken: "type", "maxLength", "required", ...
    message: str  # completes "<where> ...", e.g. "must be a string"

    @property
    def where(self) -> str:
        """The path as a reader writes it: reason, predictions[0].label; "" for the value itself."""
        text = ""
        for step in self.path:
            text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
        return text


def problem(schema: Schema, value: Any, schemas: Mapping[str, Schema]) -> Problem | None:
    """The first problem of `value` under `schema` ($refs name entries of `schemas`), or None when it is valid."""
    return _problem(schema, value, schemas, ())


def check_schema(schema: Any, schemas: Mapping[str, Schema]) -> None:
    """Raise UnknownKeyword for a keyword outside the subset, anywhere in `schema` (a $ref must resolve)."""
    if isinstance(schema, Mapping):
        for keyword, part in schema.items():
            if keyword in ANNOTATIONS or keyword == "enum":
                continue
            if keyword not in KEYWORDS:
                raise UnknownKeyword(f"the API's validator does not check {keyword!r}")
            if keyword == "type" and not set([part] if isinstance(part, str) else part) <= set(_WORDS):
                raise UnknownKeyword(f"unknown type {part!r}")
            if keyword == "$ref":
                resolve(schema, schemas)
            elif keyword == "properties":
                for one in part.values():
                    check_schema(one, schemas)
            elif keyword in ("items", "additionalProperties"):
                check_schema(part, schemas)
            elif keyword == "oneOf":
                for one in part:
                    check_schema(one, schemas)


def resolve(schema: Schema, schemas: Mapping[str, Schema]) -> Schema:
    ref = schema["$ref"]
    if not (isinstance(ref, str) and ref.startswith(REF_PREFIX) and ref[len(REF_PREFIX):] in schemas):
        raise UnknownKeyword(f"$ref {ref!r} names no schema of the document")
    return schemas[ref[len(REF_PREFIX):]]


def _is(kind: str, value: Any) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _PYTHON[kind])


def _bounds(schema: Schema) -> str:
    """An integer's or number's whole rule in words, for any of its problems: "an integer between 1 and 500"."""
    kinds = schema.get("type")
    kind = "an integer" if kinds == "integer" or kinds == ["integer"] else "a number"
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"must be {kind} between {low} and {high}"
    if low is not None:
        return f"must be {kind} of at least {low}"
    return f"must be {kind} of at most {high}" if high is not None else f"must be {kind}"


@lru_cache(maxsize=64)
def _pattern(pattern: str) -> re.Pattern[str]:
    # JSON Schema's patterns are ECMA-262's: a final `$` ends the string (Python's `\Z`).
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _problem(schema: Schema, value: Any, schemas: Mapping[str, Schema], path: tuple[str | int, ...]) -> Problem | None:
    unknown = set(schema) - KEYWORDS - ANNOTATIONS
    if unknown:
        raise UnknownKeyword(f"the API's validator does not check {sorted(unknown)}")
    if "$ref" in schema:
        found = _problem(resolve(schema, schemas), value, schemas, path)
        if found:
            return found
    if "type" in schema:
        kinds = [schema["type"]] if isinstance(schema["type"], str) else list(schema["type"])
        if not any(_is(kind, value) for kind in kinds):
            numeric = [kind for kind in kinds if kind in ("integer", "number")]
            if numeric and ("minimum" in schema or "maximum" in schema):
                return Problem(path, "type", _bounds(schema))
            return Problem(path, "type", "must be " + " or ".join(_WORDS[kind] for kind in kinds))
    if "enum" in schema and value not in schema["enum"]:
        return Problem(path, "enum", "must be one of " + ", ".join(str(option) for option in schema["enum"]))
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return Problem(path, "maxLength", f"must be at most {schema['maxLength']} characters long, not {len(value)}")
        if "minLength" in schema and len(value) < schema["minLength"]:
            return Problem(path, "minLength", f"must be at least {schema['minLength']} characters long, not {len(value)}")
        if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
            return Problem(path, "pattern", f"must match {schema['pattern']}")
    if _is("number", value):
        if "minimum" in schema and value < schema["minimum"]:
            return Problem(path, "minimum", _bounds(schema))
        if "maximum" in schema and value > schema["maximum"]:
            return Problem(path, "maximum", _bounds(schema))
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return Problem(path, "maxItems", f"must have at most {schema['maxItems']} items, not {len(value)}")
        if "minItems" in schema and len(value) < schema["minItems"]:
            return Problem(path, "minItems", f"must have at least {schema['minItems']} items, not {len(value)}")
        if "items" in schema:
            for index, item in enumerate(value):
                found = _problem(schema["items"], item, schemas, (*path, index))
                if found:
                    return found
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                return Problem((*path, name), "required", "is required")
        properties: Mapping[str, Schema] = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                found = _problem(properties[name], item, schemas, (*path, name))
            elif schema.get("additionalProperties", True) is False:
                found = Problem((*path, name), "additionalProperties", "is not allowed")
            elif isinstance(schema.get("additionalProperties"), Mapping):
                found = _problem(schema["additionalProperties"], item, schemas, (*path, name))
            else:
                found = None
            if found:
                return found
    if "oneOf" in schema:
        matching = sum(_problem(one, value, schemas, path) is None for one in schema["oneOf"])
        if matching != 1:
            return Problem(path, "oneOf", f"must match exactly one of its {len(schema['oneOf'])} forms")
    return None
