"""Who can change `flowers up` (chalicelib/local_stack/guard.py): a real server on a home with two approved models,
so that a rollback would succeed, and requests that must not: a DNS-rebinding Host, a real Chromium page on a
domain rebound to 127.0.0.1 and one on another local origin, operator routes without the home's token. After each,
the served model is the same and no domain event was written: the handler never ran. Then the token (from the
0600 file, as the CLI reads it) does work, and every answer carries the security headers."""
from __future__ import annotations

import http.client as http_client
import json
import os
import re
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import sync_playwright

from data_fixtures import require
from local_fixtures import Up, flowers, http, seed_approved_model
from pipeline_fixtures import tiny_model  # noqa: F401  (fixture)
from web_fixtures import ARGS, CHROMIUM

OLD, NEW = "00000000000000a1", "00000000000000a2"
REBOUND = "evil.example"  # a domain whose DNS the attacker points at 127.0.0.1
NO_PRIVATE_NETWORK_CHECKS = ("--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,"
                             "PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks")


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model):  # noqa: F811
    home = tmp_path_factory.mktemp("access") / "home"
    seed_approved_model(home, tiny_model, OLD)
    seed_approved_model(home, tiny_model, NEW)
    up = Up(home, "--preset", "tiny_cnn", "--quiet-period", "3600")
    yield up
    up.stop()


def served_version(up: Up) -> str:
    return up.get("models/current").json()["version"]


def events(up: Up) -> str:
    path = up.home / "events.jsonl"
    return path.read_text() if path.exists() else ""


def raw(up: Up, method: str, path: str, host: str, body: bytes = b"", headers: dict[str, str] | None = None):
    """One request with exactly this Host header (urllib would send the URL's): (status, headers, body)."""
    address = urlsplit(up.url)
    connection = http_client.HTTPConnection(address.hostname, address.port, timeout=10)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in {"Host": host, "Content-Length": str(len(body)), **(headers or {})}.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    answer = response.status, dict(response.getheaders()), response.read()
    connection.close()
    return answer


@pytest.fixture
def unchanged(served):
    """Asserts, after the test, that the served model and the event log are as before it."""
    before = served_version(served), events(served)
    yield served
    assert (served_version(served), events(served)) == before, "an operator handler ran"


def test_a_rebinding_host_gets_421_before_anything_runs(unchanged):
    up = unchanged
    port = urlsplit(up.url).port
    own = {"Content-Type": "application/json", "Origin": f"http://{REBOUND}:{port}", "Sec-Fetch-Site": "same-origin",
           "Authorization": f"Bearer {up.token}"}  # even with the token: the Host is checked first
    for method, path, headers in [("POST", "/models/rollback", own), ("POST", f"/models/{OLD}/approve", own),
                                  ("POST", "/runs", own), ("GET", "/", {}), ("GET", "/status", {}),
                                  ("GET", f"/files/models/{OLD}/model.tflite", {})]:
        for host in (f"{REBOUND}:{port}", REBOUND, f"127.0.0.1:{port + 1}", f"localhost.{REBOUND}:{port}", ""):
            status, answer_headers, body = raw(up, method, path, host, b"{}" if method == "POST" else b"", headers)
            assert status == 421, (method, path, host, status, body[:200])
            assert json.loads(body)["error"]["code"] == "misdirected_request"
            assert answer_headers["Content-Type"] == "application/json" and answer_headers["X-Content-Type-Options"] == "nosniff"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):  # the loopback names
        assert raw(up, "GET", "/status/summary", host)[0] == 200, host


def _chromium(playwright, *more: str):
    require(Path(CHROMIUM).exists(), f"Debian's Chromium ({CHROMIUM}; apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *more], headless=True)


ATTACK = """<!doctype html><title>cute cats</title><script>
window.results = (async () => {
  const out = [];
  for (const [path, type] of PLAN) {
    try {
      const r = await fetch(TARGET + path, { method: "POST", headers: { "Content-Type": type }, body: "{}", mode: MODE });
      out.push({ path, type, status: r.status, type_: r.type, body: r.type === "opaque" ? "" : await r.text() });
    } catch (e) { out.push({ path, type, error: String(e) }); }
  }
  return out;
})();
</script>"""


def _attack(target: str, mode: str) -> str:
    plan = [[f"models/{NEW}/approve", "application/json"], ["models/rollback", "application/json"],
            ["models/rollback", "text/plain"], ["runs", "application/json"], ["runs", "text/plain"]]
    return ATTACK.replace("PLAN", json.dumps(plan)).replace("TARGET", json.dumps(target)).replace("MODE", json.dumps(mode))


def test_a_page_on_a_domain_rebound_to_127_0_0_1_changes_nothing(unchanged):
    """DNS rebinding in a real Chromium: the attacker's page was served as http://evil.example:PORT/ (here by Playwright,
    as the attacker's server would have), then evil.example resolves to 127.0.0.1 (--host-resolver-rules), so the page's
    same-origin requests reach `flowers up` with Origin and Host evil.example:PORT and Sec-Fetch-Site same-origin, which
    the cross-site check alone lets through. Same origin, so the page reads the answers: each is 421.
    Chromium's own Private Network Access checks would block these public-to-loopback requests first; they are turned
    off here, as they are absent from other browsers (and from older Chromium), so that the server's refusal is what
    is tested: the 421s prove the requests reached it."""
    up = unchanged
    port = urlsplit(up.url).port
    origin = f"http://{REBOUND}:{port}"
    with sync_playwright() as playwright:
        browser = _chromium(playwright, f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1", NO_PRIVATE_NETWORK_CHECKS)
        try:
            page = browser.new_page()
            page.route(f"{origin}/cats", lambda route: route.fulfill(status=200, content_type="text/html",
                                                                    body=_attack(origin + "/", "same-origin")))
            page.goto(f"{origin}/cats")
            results = page.evaluate("window.results")
        finally:
            browser.close()
    assert len(results) == 5
    for result in results:
        assert result.get("status") == 421, result  # it reached the server, which refused it
        assert json.loads(result["body"])["error"]["code"] == "misdirected_request"


class _AttackerSite(BaseHTTPRequestHandler):
    page = ""

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = self.page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize("mode", ["cors", "no-cors"])
def test_a_page_of_another_local_origin_changes_nothing(unchanged, mode):
    """A page on another origin (a second local HTTP server, http://localhost:OTHER/) POSTs to the flowers server with
    fetch: JSON (preflighted, and refused there) and text/plain (sent as a "simple" request, without the token)."""
    up = unchanged
    handler = type("Site", (_AttackerSite,), {"page": _attack(up.url, mode)})
    site = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = _chromium(playwright)
            try:
                page = browser.new_page()
                page.goto(f"http://localhost:{site.server_port}/")
                results = page.evaluate("window.results")
            finally:
                browser.close()
    finally:
        site.shutdown()
    assert len(results) == 5
    for result in results:  # the browser hides the answer from the page (a CORS error, or an opaque response)
        assert "error" in result or result["type_"] == "opaque", result


def test_operator_routes_need_the_home_token_from_its_0600_file(served):
    up = served
    token_file = up.home / "operator-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and token_file.stat().st_uid == os.getuid()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", up.token)
    before = served_version(up), events(up)
    json_type = "application/json"
    photo = "status/label-issues/thumbnail?file=" + quote("daisy/0.jpg")
    for method, path in [("POST", "models/rollback"), ("POST", f"models/{OLD}/approve"), ("POST", f"models/{NEW}/reject"),
                         ("POST", "runs"), ("GET", f"models/{OLD}/photos"), ("GET", photo), ("GET", "status")]:
        body = b"{}" if method == "POST" else None
        for headers in ({}, {"Authorization": "Bearer " + "x" * 43}, {"Authorization": up.token},
                        {"Authorization": f"Basic {up.token}"}, {"X-Flowers-Token": up.token}):
            answer = http(up.url + path, method, body, json_type if body else None, headers=headers)
            assert answer.status == 401, (path, headers, answer.status, answer.body[:200])
            assert answer.json()["error"]["code"] == "unauthorized" and answer.headers["WWW-Authenticate"] == "Bearer"
    assert (served_version(up), events(up)) == before
    # routes for apps and the page need none
    for path in ("status/summary", "models", "models/current", "openapi.json", f"models/{OLD}/confusion-matrix", ""):
        assert http(up.url + path).status == 200, path
    # with the token: lineage, and (the CLI reading the file) a rollback that happens
    assert http(up.url + f"models/{OLD}/photos", headers=up.auth).json()["count"] == 6
    done = flowers(up.home, "rollback", "--home", str(up.home), "--reason", "the token works")
    assert done.returncode == 0, done.stdout + done.stderr
    assert served_version(up) != before[0] and "Model Rolled Back" in events(up)
    approved = http(up.url + f"models/{before[0]}/approve", "POST", b"{}", json_type, headers=up.auth)
    assert approved.status == 200 and served_version(up) == before[0]


SECURITY = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
POLICY = "default-src 'self'; frame-ancestors 'none'"


def test_every_answer_carries_the_security_headers(served):
    up = served
    answers = {
        "json": up.get("models"), "error from a handler": up.get("models/00000000000000ff/photos"),
        "404 of the server": up.get("nope"), "401": http(up.url + "runs", "POST", b"{}", "application/json"),
        "png": up.get(f"models/{OLD}/confusion-matrix", accept="image/png"),
        "model file": up.get(f"files/models/{OLD}/model.tflite"), "openapi": up.get("openapi.json")}
    for what, answer in answers.items():
        assert {name: answer.headers.get(name) for name in SECURITY} == SECURITY, what
        assert answer.headers["Content-Security-Policy"] == POLICY, what
    status, headers, _ = raw(up, "GET", "/", f"{REBOUND}:1")
    assert status == 421 and headers["Content-Security-Policy"] == POLICY
    page = up.get("")
    policy = page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff" and "'unsafe-inline'" not in policy
    assert re.fullmatch(r"default-src 'self'; script-src 'sha256-[A-Za-z0-9+/=]+'; style-src 'sha256-[A-Za-z0-9+/=]+'; "
                        r"img-src 'self' blob: data:; frame-ancestors 'none'", policy), policy


def test_the_page_works_under_its_policy_and_gets_the_token_only_from_its_link(served):
    """In Chromium: the page runs under its CSP with no violation, keeps no secret in localStorage, takes the token from
    the link `flowers up` prints (then drops it from the address bar) and sends it for operator data only to its own
    server; opened plainly it has none."""
    up = served
    with sync_playwright() as playwright:
        browser = _chromium(playwright)
        try:
            problems: list[str] = []

            def watched():
                page = browser.new_page()
                page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
                page.on("pageerror", lambda error: problems.append(str(error)))
                return page

            page = watched()
            page.goto(up.url)
            page.wait_for_selector("#models tbody tr[data-version]", timeout=15_000)
            page.wait_for_selector("#detail img.matrix", timeout=15_000)
            page.wait_for_function("() => document.querySelector('#detail img.matrix').naturalWidth > 0", timeout=15_000)
            assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
            assert page.evaluate("sessionStorage.getItem('flowers-operator-token')") is None
            page = watched()  # a new document (on the same page, a changed fragment would not reload it)
            page.goto(up.url + "#token=" + up.token)
            page.wait_for_selector("#models tbody tr[data-version]", timeout=15_000)
            assert page.evaluate("sessionStorage.getItem('flowers-operator-token')") == up.token
            assert page.evaluate("location.hash") == "" and page.evaluate("localStorage.length") == 0
            sent = page.evaluate("fetch('models/%s/photos', { headers: withKey() }).then((r) => r.status)" % OLD)
            assert sent == 200
            # the page's own script can be run, an injected inline one cannot
            page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1';
                                     document.body.append(s); }""")
            assert page.evaluate("window.injected") is None
        finally:
            browser.close()
    assert any("Content Security Policy" in p for p in problems), problems  # the refused injection was reported
