"""Locked dependencies: every install reads a lock in which each package is pinned with its files'
hashes, every top-level pin of an input is in its lock, and the sets that meet agree."""
from __future__ import annotations

import re

import pytest

from data_fixtures import ROOT
from lock_files import LAMBDA_LOCK, LOCKS, lock_entries, read_lock, read_pins

MAKEFILE = (ROOT / "Makefile").read_text()
DOCKERFILE = (ROOT / "training" / "Dockerfile").read_text()
CI = (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_lock_line_is_an_exact_pin_with_its_hashes(lock):
    entries = read_lock(lock)
    assert entries and len(entries) == len(lock_entries(lock))
    for name, locked in entries.items():
        assert locked.hashes, f"{lock}: {name}=={locked.version} carries no --hash"
    assert "make lock" in (ROOT / lock).read_text().split("\n", 2)[1], f"{lock} was not written by `make lock`"


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_top_level_pin_is_in_its_lock_at_that_version(lock):
    locked = read_lock(lock)
    for source in LOCKS[lock]:
        for name, version in read_pins(source).items():
            assert name in locked, f"{source} pins {name}, {lock} lacks it: run `make lock`"
            assert locked[name].version == version, f"{lock}: {name} {locked[name].version}, {source} says {version}"


def test_the_sets_that_meet_agree():
    """The dev venv runs the tests with the Lambda's and the training image's versions, and pip is one version."""
    dev = read_lock("requirements-dev.txt")
    for lock in (LAMBDA_LOCK, "training/requirements.txt", "requirements-pip.txt"):
        for name, locked in read_lock(lock).items():
            assert dev[name].version == locked.version, f"{name}: dev {dev[name].version}, {lock} {locked.version}"


def test_the_training_lock_leaves_the_base_images_tensorflow_alone():
    """The base image brings TensorFlow; the lock holds what goes on top of it (resolved with it, never it)."""
    assert not [name for name in read_lock("training/requirements.txt") if name.startswith("tensorflow")]
    assert read_pins("training/tensorflow.in") == {"tensorflow": read_pins("requirements-dev.in")["tensorflow-cpu"]}
    assert "--no-emit-package tensorflow" in MAKEFILE


def test_the_lambda_lock_never_ships_tensorflow_and_keeps_the_glibc_2_26_wheels():
    locked = read_lock(LAMBDA_LOCK)
    assert not [name for name in locked if "tensorflow" in name or name == "keras"]
    # Newer releases of these are manylinux_2_27+ only, which Lambda's python3.11 cannot load.
    assert {n: locked[n].version for n in ("ai-edge-litert", "numpy", "pillow")} == {
        "ai-edge-litert": "1.4.0", "numpy": "2.2.6", "pillow": "12.0.0"}
    assert "$(UV_COMPILE) $(LAMBDA_PLATFORM) requirements.in -o requirements.txt" in MAKEFILE
    assert "LAMBDA_PLATFORM := --python-platform x86_64-manylinux2014" in MAKEFILE


def test_every_install_is_hash_checked_and_pip_is_pinned():
    installs = [line for text in (MAKEFILE, DOCKERFILE) for line in text.splitlines() if re.search(r"pip install", line)]
    assert installs
    for line in installs:
        if "-e ." in line:  # the project itself, from this checkout, built with the lock's setuptools
            assert "--no-build-isolation" in line and "--no-deps" in line
            continue
        assert "--require-hashes" in line or "$(PIP_LOCKED)" in line, line
    assert "PIP_LOCKED := -m pip install -q --require-hashes --only-binary :all:" in MAKEFILE
    for text in (MAKEFILE, DOCKERFILE, CI):
        assert "--upgrade pip" not in text and "-U pip" not in text
    # pip comes from its lock before anything else, in every venv and in the image.
    for venv_python in ("$(PY)", "$(MP_VENV)/bin/python", "$(INFRA_VENV)/bin/python", "$(LOCK_VENV)/bin/python"):
        first = MAKEFILE.index(f"{venv_python} $(PIP_LOCKED) -r ")
        assert MAKEFILE.startswith(f"{venv_python} $(PIP_LOCKED) -r requirements-pip.txt", first), venv_python
    assert DOCKERFILE.index("-r /opt/flowers/requirements-pip.txt") < DOCKERFILE.index(
        "-r /opt/flowers/training/requirements.txt")


def test_each_venv_installs_its_lock_and_never_an_input():
    assert "$(PY) $(PIP_LOCKED) -r requirements-dev.txt" in MAKEFILE
    assert "$(PY) $(PIP_LOCKED) --no-deps -r training/requirements-nodeps.txt" in MAKEFILE
    assert "$(MP_VENV)/bin/python $(PIP_LOCKED) -r tests/mobile/requirements.txt" in MAKEFILE
    assert "$(INFRA_VENV)/bin/python $(PIP_LOCKED) -r infra/requirements-checks.txt" in MAKEFILE
    assert "$(LOCK_VENV)/bin/python $(PIP_LOCKED) -r requirements-uv.txt" in MAKEFILE
    for text in (MAKEFILE, DOCKERFILE):
        assert not re.search(r"pip install[^\n]*-r \S+\.in\b", text)
    # make lock writes every lock from its inputs.
    for lock, sources in LOCKS.items():
        assert re.search(rf"{re.escape(sources[0])}[^\n]*-o {re.escape(lock)}\n", MAKEFILE), lock
