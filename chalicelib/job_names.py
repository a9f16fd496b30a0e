"""Deterministic SageMaker job names: the same data set version always gives the same names.

SageMaker refuses a second job with a name already used in the account and region, which
makes a replayed launch harmless. Names match ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}.
"""
from __future__ import annotations

import re

_MAX = 63
_SUFFIX_CONVERT = "-convert"


def _stem(group: str, version: str) -> str:
    clean = re.sub(r"[^a-zA-Z0-9-]+", "-", group).strip("-") or "flowers"
    room = _MAX - len(version) - 1 - len(_SUFFIX_CONVERT)
    return f"{clean[:room].rstrip('-')}-{version}"


def training_job(group: str, version: str) -> str:
    return _stem(group, version)


def conversion_job(group: str, version: str) -> str:
    return _stem(group, version) + _SUFFIX_CONVERT


def version_from_job(name: str) -> str:
    """The data set version inside one of our job names ("" when the name is not ours)."""
    match = re.search(r"-([0-9a-f]{16})(?:-convert)?$", name)
    return match.group(1) if match else ""


VERSION = re.compile(r"^[0-9a-f]{16}$")
