"""Fixtures of the browser tests (test_local_web.py, test_web_layout.py): headless Debian Chromium
driven by Playwright (never a downloaded browser), and `flowers up` serving a real tiny model."""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

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


@contextmanager
def stub_api(answers: dict[str, tuple[int, Any]], missing: tuple[int, Any] = (404, {})) -> Iterator[str]:
    """The web page (GET /) beside canned API answers {path: (status, JSON)}, for a page state no pipeline
    needs to reach; other paths answer `missing`. Yields the base URL."""
    from chalicelib.api.web import PAGE

    class Server(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            code, document = answers.get(self.path.split("?")[0], missing)
            body, kind = json.dumps(document).encode(), "application/json"
            if self.path == "/":
                code, body, kind = 200, PAGE.read_bytes(), "text/html"
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
