"""The web page in a real browser: headless Debian Chromium driven by Playwright (no browser
download), against `flowers up` serving a real converted tiny model."""
from __future__ import annotations

import base64
import json
import shutil

import pytest

from data_fixtures import require_photos
from pipeline_fixtures import sample_photos, tiny_model  # noqa: F401  (fixtures)
from web_fixtures import browser, served, stub_api  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _photos() -> None:
    require_photos()


@pytest.fixture
def page(browser):
    return browser.new_page()


def test_web_page_predicts_shows_models_status_and_clear_errors(served, page, browser, tmp_path, tiny_model):  # noqa: F811
    up, version = served
    threshold = json.loads((tiny_model / "metadata.json").read_text())["threshold"]
    page.goto(up.url)
    page.wait_for_selector(f"#current:has-text('serving {version}')", timeout=15_000)

    # The models table with the confusion matrix picture, and the pipeline panel.
    row = page.locator(f"#models tr[data-version='{version}']")
    row.wait_for(timeout=15_000)
    # Opened plainly (no operator token): GET /models' short reason, not the registry's words (issue 28, item 4).
    assert "approved" in row.inner_text() and "seeded by the test" not in row.inner_text()
    page.wait_for_function("() => document.querySelector('#detail img.matrix')?.naturalWidth > 0", timeout=15_000)
    assert "new photos" in page.locator("#status").inner_text()
    operator = browser.new_page()  # with the link flowers up prints: GET /models/detail, the full reason
    operator.goto(up.url + "#token=" + up.token)
    operator.wait_for_selector(f"#models tr[data-version='{version}']:has-text('seeded by the test')", timeout=15_000)
    operator.close()

    # Pick two photos: top bars with scores, the model version and the latency for each.
    photos = sample_photos(2)
    page.set_input_files("#file-input", [str(p) for p in photos])
    page.wait_for_function("() => document.querySelectorAll('#results .result .bar').length >= 6", timeout=15_000)
    cards = page.locator("#results .result")
    assert cards.count() == 2
    for i in range(2):
        text = cards.nth(i).inner_text()
        assert f"model {version}" in text and " ms" in text
        assert cards.nth(i).locator(".bar").count() == 3  # the tiny model has 3 classes; top-5 shows all
        # the answer's label: "not sure" exactly when the top score is below the model's threshold; scores in per cent
        top = float(cards.nth(i).locator(".bar").first.get_attribute("data-score"))
        assert cards.nth(i).locator(".bar .score").first.inner_text() == f"{100 * top:.1f} %"
        verdict = cards.nth(i).locator(".verdict").inner_text()
        if top < threshold:
            assert verdict.startswith("Not sure") and cards.nth(i).locator(".bar.unsure").count() == 1
        else:
            assert verdict == cards.nth(i).locator(".bar .label").first.inner_text()
            assert cards.nth(i).locator(".bar.top").count() == 1  # the top class highlighted
    # the models table shows ECE before -> after calibration (GET /models' metrics; the seeded model has no run,
    # so no metrics: its cell is empty, and the page's formatting is checked directly)
    assert "ECE: calibration error before → after" in page.locator("#models-note").inner_text() and row.locator("td.ece").count() == 1
    assert page.evaluate("ece(0.1234, 0.0321)") == "0.123 → 0.032" and page.evaluate("ece(undefined, null)") == ""

    # Drag and drop one photo onto the drop zone.
    data = base64.b64encode(photos[0].read_bytes()).decode()
    transfer = page.evaluate_handle("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.jpg', {type: 'image/jpeg'}));
        return dt; }""", data)
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_function("() => document.querySelectorAll('#results .result').length === 3 && "
                           "document.querySelector('#results .result').innerText.includes('dropped.jpg') && "
                           "document.querySelector('#results .result .bar') !== null", timeout=15_000)

    # Clear messages: a text file, a corrupt "photo", an oversized photo.
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    big = tmp_path / "huge.jpg"
    shutil.copyfile(photos[0], big)
    with open(big, "ab") as handle:
        handle.write(b"\0" * (5 * 1024 * 1024))
    page.set_input_files("#file-input", [str(tmp_path / "notes.txt")])
    page.wait_for_selector(".result .error:has-text('Not an image: notes.txt')", timeout=10_000)
    page.set_input_files("#file-input", [str(tmp_path / "broken.jpg")])
    page.wait_for_selector(".result .error:has-text('Cannot use this file')", timeout=10_000)
    page.set_input_files("#file-input", [str(big)])
    page.wait_for_selector(".result .error:has-text('Too large: huge.jpg')", timeout=10_000)
    assert "4 MiB" in page.locator(".result .error").first.inner_text()


def test_page_asks_for_the_api_key_and_sends_it(page):
    """On AWS, API Gateway answers 403 without `x-api-key`: the page asks for the key once,
    then sends it on every call, the confusion-matrix picture included. GET /status is the operators' (IAM): refused
    whatever the key, the page shows GET /status/summary instead, and GET /models for GET /models/detail (issue 28,
    item 4)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from chalicelib.contract.charts import confusion_matrix_png
    from chalicelib.api.web import PAGE

    seen = []
    models = {"models": [{"version": "0123456789abcdef", "status": "approved", "metrics": {"test_accuracy": 0.9},
                          "created_at": "2026-11-26T08:00:00+00:00", "reason": "approved by the promotion gate"}]}

    class Gateway(BaseHTTPRequestHandler):  # API Gateway's API key check, and IAM's refusal of an unsigned /status
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/":
                return self.reply(200, PAGE.read_bytes(), "text/html")
            seen.append((self.path, self.headers.get("x-api-key")))
            if self.path in ("/status", "/models/detail"):
                return self.reply(403, b'{"message": "Missing Authentication Token"}')
            if self.headers.get("x-api-key") != "s3cret":
                return self.reply(403, b'{"message": "Forbidden"}')
            if self.path.endswith("/confusion-matrix"):
                return self.reply(200, confusion_matrix_png([[3, 1], [0, 4]], ["a", "b"]), "image/png")
            body = {"/models": models, "/status/summary": {"pending_uploads": 2, "dataset": {"version": "v"}}, "/models/current": {"version": "0123456789abcdef"}}
            return self.reply(200, json.dumps(body.get(self.path.split("?")[0], {})).encode())

        def reply(self, status, body, kind="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_port}/")
        page.wait_for_selector("#key-form:not([hidden])", timeout=10_000)
        page.fill("#api-key", "s3cret")
        page.click("#key-form button")
        page.wait_for_selector("#current:has-text('serving 0123456789abcdef')", timeout=10_000)
        page.wait_for_function("() => document.querySelector('#detail img.matrix')?.naturalWidth > 0", timeout=10_000)
        page.wait_for_selector("#status:has-text('2 since the last training run')", timeout=10_000)
        page.wait_for_selector("#models:has-text('approved by the promotion gate')", timeout=10_000)
    finally:
        server.shutdown()
    assert ("/models/0123456789abcdef/confusion-matrix", "s3cret") in seen
    assert any(key is None for _, key in seen)  # the first calls, before the key was known, were refused
    assert ("/status/summary", "s3cret") in seen and [path for path, _ in seen].count("/status") == 0  # never asked without the operator token
    assert ("/models", "s3cret") in seen and [path for path, _ in seen].count("/models/detail") == 0


def test_a_page_of_another_site_cannot_change_the_served_model(served, page):
    """Local mode has no authentication: a web page the user visits must not be able to reject or
    roll back models on 127.0.0.1 (forged form posts and fetches are refused; the state is intact)."""
    import json
    import urllib.error
    import urllib.request

    up, version = served

    def post(path: str, headers: dict[str, str]) -> tuple[int, str]:
        # with the operator token, as if a page had it: the checks behind it refuse the forgery all the same
        request = urllib.request.Request(up.url + path, data=b"{}", method="POST", headers={**up.auth, **headers})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, ""
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())["error"]["code"]

    assert post(f"models/{version}/reject", {"Content-Type": "text/plain"}) == (415, "unsupported_media_type")
    assert post("models/rollback", {"Content-Type": "application/x-www-form-urlencoded"}) == (415, "unsupported_media_type")
    assert post(f"models/{version}/reject", {"Content-Type": "application/json", "Origin": "http://evil.example"}) == (
        403, "cross_site_request")
    assert post(f"models/{version}/reject", {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}) == (
        403, "cross_site_request")

    # A real browser on another origin (localhost is another site than 127.0.0.1) tries both forgeries: a page of
    # another server (the flowers page itself, opened as localhost, may not fetch from 127.0.0.1: its CSP's connect-src).
    with stub_api({}) as other:
        page.goto(other.replace("127.0.0.1", "localhost"))
        statuses = page.evaluate("""async (target) => {
            const simple = await fetch(target + 'models/rollback', {method: 'POST', mode: 'no-cors', body: '{}',
                                                                   headers: {'Content-Type': 'text/plain'}});
            let preflighted = 'blocked';
            try {
                const json = await fetch(target + 'models/rollback', {method: 'POST', body: '{}',
                                                                     headers: {'Content-Type': 'application/json'}});
                preflighted = json.status;
            } catch (e) {}
            return [simple.type, preflighted]; }""", up.url)
    assert statuses == ["opaque", "blocked"]  # no answer readable, and the JSON post never leaves the browser
    current = json.loads(up.get("models/current").body)
    assert current["version"] == version
    models = {m["version"]: m["status"] for m in json.loads(up.get("models").body)["models"]}
    assert models[version] == "approved"


def test_page_lists_every_skipped_file_of_the_last_run(page):
    """The pipeline panel shows GET /status's validation report: each skipped file, its reason and
    detail, the counts, and how many more there are than listed."""
    from chalicelib.pipeline import validation_report

    skipped = [{"path": "bad_empty.jpg", "reason": "empty_file", "detail": "the file has zero bytes"},
               {"path": "bad_text.jpg", "reason": "not_an_image", "detail": "not a JPEG, PNG, BMP or WEBP image"},
               {"path": "bad_truncated.jpg", "reason": "corrupt", "detail": "cannot decode: image file is truncated"},
               {"path": "bad_unlabelled.jpg", "reason": "no_label", "detail": "no bad_unlabelled.txt label file beside it"}]
    report = {"usable_images": 12, "skipped": skipped, "ignored_files": ["notes.txt"]}
    status = {"pending_uploads": 0, "running_job": None, "last_outcome": None,
              "validation": validation_report.summary(report, "flowers-0123456789abcdef", limit=3)}

    answers = {"/status": (200, status), "/models/detail": (200, {"models": []}), "/models/current": (503, {})}
    with stub_api(answers, missing=(200, {})) as url:
        page.goto(url + "#token=t")  # GET /status (the file list) is the operators': the page asks for it with the token
        page.wait_for_selector("#skipped", timeout=10_000)
        panel = page.locator("#status").inner_text()
    assert "skipped files (4 + 1 ignored)" in panel and "12 photos used by flowers-0123456789abcdef" in panel
    plain = {"empty_file": "empty file", "not_an_image": "not an image", "corrupt": "damaged image"}  # words, not codes
    for item in skipped[:3]:
        assert f"{item['path']}: {plain[item['reason']]} — {item['detail']}" in panel
    assert "bad_unlabelled.jpg" not in panel and "… and 1 more" in panel
    assert "notes.txt: ignored" in panel
