"""The web page shows the last run's likely mislabelled photos (thumbnails, "labelled X, looks like Y"), the class
balance's warnings, and each class's precision, recall and F1 with the most confused pairs: drawn in Chromium from
documents shaped as GET /status and GET /models give them."""
from __future__ import annotations

import pytest

from data_fixtures import require_photos
from pipeline_fixtures import aws, tiny_model  # noqa: F401  (fixtures)
from web_fixtures import browser, served  # noqa: F401  (fixtures)

STATUS = {
    "pending_uploads": 0, "next_run": {"action": "idle", "reason": "", "in_seconds": 0},
    "validation": {
        "training_job": "flowers-0123456789abcdef", "usable_images": 1500, "skipped_count": 0, "ignored_count": 0,
        "skipped": [], "ignored_files": [], "skipped_by_reason": {},
        "label_issues": {"count": 3, "photos": 1500, "not_listed": 1, "skipped": None, "issues": [
            {"file": "roses/fresco.jpg", "given": "roses", "suggested": "tulips", "confidence": 0.874},
            {"file": "daisy/poppies.jpg", "given": "daisy", "suggested": "dandelion", "confidence": 0.61}]},
        "class_balance": {"status": "weighted by inverse frequency: largest / smallest class 3.00 > 2", "largest_to_smallest": 3.0,
                          "class_weights": {"daisy": 0.5, "roses": 1.5}, "min_recommended": 30,
                          "warnings": ["roses: 12 photos, fewer than the 30 recommended; add photos of this class"]}}}


@pytest.fixture(autouse=True)
def _photos() -> None:
    require_photos()


def test_page_lists_mislabelled_photos_class_warnings_and_per_class_f1(served, browser):  # noqa: F811
    up, _ = served
    page = browser.new_page()
    page.goto(up.url)
    page.wait_for_selector("#status dl", timeout=15_000)
    page.evaluate("(s) => renderStatus(s)", STATUS)
    items = page.locator("#label-issues li")
    assert items.count() == 3
    assert "labelled roses, looks like tulips (87.4 %)" in items.nth(0).inner_text()
    assert "roses/fresco.jpg" in items.nth(0).inner_text() and items.nth(0).locator("img").count() == 1
    assert "… and 1 more" in items.nth(2).inner_text()
    status = page.locator("#status").inner_text()
    assert "photos to check (3)" in status and "Suggestions only" in status
    assert "roses: 12 photos, fewer than the 30 recommended" in page.locator("#class-balance").inner_text()
    # these photos are in no run of this server: their thumbnails are refused, and hidden rather than broken
    page.wait_for_function("() => document.querySelector('#label-issues img').style.visibility === 'hidden'", timeout=15_000)

    page.evaluate("""() => document.querySelector('#detail').replaceChildren(perClassTable(
        {daisy: {precision: 1, recall: 2 / 3, f1: 0.8, support: 3}, roses: {precision: 2 / 3, recall: 1, f1: 0.8, support: 2}},
        [{true: "daisy", predicted: "roses", count: 1}]))""")
    row = page.locator("#per-class tbody tr").nth(0).inner_text().split("\t")
    assert row == ["daisy", "100.0 %", "66.7 %", "80.0 %", "3"]
    assert page.locator("#confused-pairs").inner_text() == "Most confused: daisy taken for roses (1)"
    # with the model served then scored on the same photos (the conversion's baseline), its F1 beside each class's
    page.evaluate("""() => document.querySelector('#detail').replaceChildren(perClassTable(
        {daisy: {precision: 1, recall: 1, f1: 1, support: 3}}, [], {daisy: {precision: 1, recall: 0.5, f1: 2 / 3, support: 3}}))""")
    assert page.locator("#per-class tbody tr").nth(0).inner_text().split("\t") == ["daisy", "100.0 %", "100.0 %", "100.0 %", "3", "66.7 %"]
    assert page.locator("#confused-pairs").inner_text() == "Most confused: none"

    page.evaluate("(s) => renderStatus(s)", {**STATUS, "validation": {**STATUS["validation"], "label_issues": {
        "count": 0, "photos": 4, "issues": [], "not_listed": 0, "skipped": "every class needs at least 2 photos"}}})
    assert "not checked: every class needs at least 2 photos" in page.locator("#label-issues").inner_text()
