"""Deterministic SageMaker job names: the same data set version always gives the same names.

SageMaker refuses a second job with a name already used in the account and region, which
makes a replayed launch harmless. Names match ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}.
"""
from __future__ import annotations

import re

_MAX = 63
_SUFFIX_CONVERT = "-convert"
_ATTEMPT_ROOM = len("-a99")


def _stem(group: str, version: str) -> str:
    clean = re.sub(r"[^a-zA-Z0-9-]+", "-", group).strip("-") or "flowers"
    room = _MAX - len(version) - 1 - len(_SUFFIX_CONVERT) - _ATTEMPT_ROOM
    return f"{clean[:room].rstrip('-')}-{version}"


def _attempt(attempt: int) -> str:
    """The first attempt keeps the plain name (names made before retries existed stay ours)."""
    return "" if attempt <= 1 else f"-a{attempt}"


def training_job(group: str, version: str, attempt: int = 1) -> str:
    return _stem(group, version) + _attempt(attempt)


def conversion_job(group: str, version: str, attempt: int = 1) -> str:
    return _stem(group, version) + _attempt(attempt) + _SUFFIX_CONVERT


_OURS = re.compile(r"-([0-9a-f]{16})(?:-a([0-9]{1,2}))?(?:-convert)?$")


def version_from_job(name: str) -> str:
    """The data set version inside one of our job names ("" when the name is not ours)."""
    match = _OURS.search(name)
    return match.group(1) if match else ""


def attempt_of(name: str) -> int:
    """Which attempt a job of ours is (1 for a plain name)."""
    match = _OURS.search(name)
    return int(match.group(2)) if match and match.group(2) else 1


VERSION = re.compile(r"^[0-9a-f]{16}$")
