"""GET /status and `flowers status` show the last run's likely mislabelled photos and class balance, as the
training code reports them (training/label_issues.py, training/class_balance.py), within the OpenAPI document."""
from __future__ import annotations

import io
import json

import jsonschema
import numpy as np

from chalicelib.api import openapi

from chalicelib.pipeline import validation_report
from flowers_cli.output import format_status
from pipeline_fixtures import aws, training_state_event  # noqa: F401  (fixture)
from training import class_balance, label_issues


def training_report() -> dict:
    """validation.json's sections as a run writes them: two flipped photos among separable clusters."""
    rng = np.random.default_rng(2)
    truth = np.repeat(np.arange(3), 40)
    features = rng.normal(0, 4, (3, 16))[truth] + rng.normal(0, 1, (120, 16))
    given = truth.copy()
    given[[5, 60]] = [1, 2]
    names = ["roses", "tulips", "daisy"]
    paths = [f"{names[g]}/{i}.jpg" for i, g in enumerate(given)]
    return {"usable_images": 120, "skipped": [],
            "label_issues": label_issues.find(features, given, paths, names, seed=1),
            "class_balance": class_balance.report(names, [32, 32, 8], [40, 40, 10], enabled=True)}


def validate(summary: dict) -> None:
    document = openapi.document()
    schema = dict(document["components"]["schemas"]["Validation"], components=document["components"])
    jsonschema.validate(summary, schema)


def test_status_lists_mislabelled_photos_and_class_warnings_within_the_document():
    summary = validation_report.summary(training_report(), "job-1")
    validate(summary)
    found = summary["label_issues"]
    assert found["count"] >= 2 and found["photos"] == 120 and found["skipped"] is None
    first = {(i["file"], i["given"], i["suggested"]) for i in found["issues"][:2]}
    assert first == {("tulips/5.jpg", "tulips", "roses"), ("daisy/60.jpg", "daisy", "tulips")}
    balance = summary["class_balance"]
    assert balance["class_weights"]["daisy"] > 1 and balance["warnings"] == [
        "daisy: 10 photos, fewer than the 30 recommended; add photos of this class"]

    text = format_status({"validation": summary})
    assert "labels        " in text and "look mislabelled (suggestions: nothing is relabelled or dropped)" in text
    assert "tulips/5.jpg: labelled tulips, looks like roses (" in text
    assert "  warning: daisy: 10 photos, fewer than the 30 recommended" in text
    assert "classes       weighted by inverse frequency" in text


def test_the_list_is_capped_and_the_rest_counted():
    issues = [{"file": f"a/{i}.jpg", "given": "a", "suggested": "b", "confidence": 0.9} for i in range(80)]
    summary = validation_report.summary({"label_issues": {"count": 80, "photos": 900, "issues": issues}}, "job")
    validate(summary)
    assert len(summary["label_issues"]["issues"]) == validation_report.MAX_LABEL_ISSUES
    assert summary["label_issues"]["not_listed"] == 80 - validation_report.MAX_LABEL_ISSUES
    text = format_status({"validation": summary})
    assert "80 of 900 photos look mislabelled" in text and "... and 60 more" in text


def test_old_or_malformed_reports_never_break_status():
    assert validation_report.summary({}, "job")["label_issues"] is None
    for bad in ({"label_issues": "x", "class_balance": 3},
                {"label_issues": {"issues": 7, "count": "many"}, "class_balance": {"warnings": "w", "class_weights": [1]}},
                {"label_issues": {"issues": [None, {"confidence": "high"}, {"file": 3, "confidence": 7}], "count": -1}}):
        summary = validation_report.summary(bad, "job")
        validate(summary)
        format_status({"validation": summary})
    skipped = validation_report.summary({"label_issues": label_issues.find(
        np.zeros((3, 2)), np.array([0, 1, 2]), ["a", "b", "c"], ["a", "b", "c"])}, "job")
    validate(skipped)
    assert "labels        not checked: every class needs at least 2 photos" in format_status({"validation": skipped})


def test_thumbnails_of_listed_photos_only(aws, tmp_path):  # noqa: F811
    """GET /status/label-issues/thumbnail serves a small JPEG of a photo the last run lists, read from the data set;
    any other file (listed nowhere, or gone) is a 404 in the API's error shape."""
    from chalice.test import Client
    from PIL import Image

    import app as chalice_app
    from data_fixtures import PHOTOS, require_photos
    from test_pipeline_aws import World
    from test_status_validation import put_job_output

    require_photos()
    photo = sorted((PHOTOS / "roses").glob("*.jpg"))[0].read_bytes()
    with Client(chalice_app.app) as client:
        world = World(aws, client)
        world.upload(["tulips/mislabelled.jpg", "roses/b.jpg"], content=photo)
        world.now += 601
        first = world.tick()
        report = {"usable_images": 2, "label_issues": {"count": 2, "photos": 2, "issues": [
            {"file": "tulips/mislabelled.jpg", "given": "tulips", "suggested": "roses", "confidence": 0.9},
            {"file": "roses/gone.jpg", "given": "roses", "suggested": "tulips", "confidence": 0.8}]}}
        put_job_output(world, first["job"], report)
        world.sagemaker_event(training_state_event(first["job"], "Completed"))
        assert world.status()["validation"]["label_issues"]["count"] == 2

        answer = client.http.get("/status/label-issues/thumbnail?file=tulips%2Fmislabelled.jpg", headers={"Accept": "image/jpeg"})
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/jpeg", answer.body[:300]
        with Image.open(io.BytesIO(answer.body)) as thumbnail:
            assert thumbnail.format == "JPEG" and thumbnail.size == (128, 128)
        for file in ("roses/b.jpg", "roses/gone.jpg", "", "../../etc/passwd"):
            missing = client.http.get(f"/status/label-issues/thumbnail?file={file}", headers={"Accept": "image/jpeg"})
            assert missing.status_code == 404 and json.loads(missing.body)["error"]["code"] == "not_found", file
