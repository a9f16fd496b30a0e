"""The hash-locked requirement files (`make lock`): each *.in names what we ask for (top-level pins),
the *.txt beside it is the exact set uv resolved, every package with the hashes of its files."""
from __future__ import annotations

import re
from dataclasses import dataclass

from data_fixtures import ROOT

# Each lock and the inputs it was compiled from (the Makefile's `lock` target says how).
LOCKS: dict[str, tuple[str, ...]] = {
    "requirements-pip.txt": ("requirements-pip.in",),
    "requirements-uv.txt": ("requirements-uv.in",),
    "requirements.txt": ("requirements.in",),  # the Lambda zip (chalice package reads requirements.txt)
    "training/requirements.txt": ("training/requirements.in",),
    "training/requirements-nodeps.txt": ("training/requirements-nodeps.in",),
    "requirements-dev.txt": ("requirements-dev.in",),
    "infra/requirements-checks.txt": ("infra/requirements-checks.in",),
    "tests/mobile/requirements.txt": ("tests/mobile/requirements.in",),
}
LAMBDA_LOCK = "requirements.txt"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\#]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})\b")


def canonical(name: str) -> str:
    """PEP 503's normalised name: `Typing_Extensions` and `typing-extensions` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Locked:
    name: str
    version: str
    hashes: tuple[str, ...]


def lock_entries(lock: str) -> list[str]:
    """The lock's requirement entries, each with its continuation lines joined; comments dropped."""
    text = (ROOT / lock).read_text().replace("\\\n", " ")
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def read_lock(lock: str) -> dict[str, Locked]:
    found: dict[str, Locked] = {}
    for entry in lock_entries(lock):
        match = _PIN.match(entry)
        assert match, f"{lock}: not an exact pin: {entry[:80]}"
        found[canonical(match.group(1))] = Locked(match.group(1), match.group(2), tuple(_HASH.findall(entry)))
    return found


def read_pins(requirements: str) -> dict[str, str]:
    """The top-level `name==version` pins of an input file, following its `-r` includes."""
    pins: dict[str, str] = {}
    for raw in (ROOT / requirements).read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            pins.update(read_pins(line[3:].strip()))
            continue
        match = _PIN.match(line)
        assert match, f"{requirements}: not an exact pin: {line}"
        pins[canonical(match.group(1))] = match.group(2)
    return pins
