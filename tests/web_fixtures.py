"""Fixtures of the browser tests (test_local_web.py, test_web_layout.py): headless Debian Chromium
driven by Playwright (never a downloaded browser), and `flowers up` serving a real tiny model."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from data_fixtures import require
from local_fixtures import Up, seed_approved_model
from pipeline_fixtures import tiny_model  # noqa: F401  (fixture)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture
def served(tmp_path, tiny_model):  # noqa: F811
    """`flowers up` on a fresh home whose approved model is the tiny one; (Up, its version)."""
    home = tmp_path / "home"
    version = seed_approved_model(home, tiny_model)
    up = Up(home, "--preset", "tiny_cnn", "--quiet-period", "3600")
    yield up, version
    up.stop()


@pytest.fixture
def browser():
    require(Path(CHROMIUM).exists(), f"Debian's Chromium ({CHROMIUM}; apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
