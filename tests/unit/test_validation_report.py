"""chalicelib/pipeline/validation_report.py: what GET /status and `flowers status` show of the last run's report: likely
mislabelled photos and class balance, as the training code reports them (training/label_issues.py,
training/class_balance.py), within the OpenAPI document; every skipped file, capped; the report read from the
job's output archive, once."""
from __future__ import annotations

import io
import tarfile

import jsonschema
import numpy as np

from chalicelib.api import openapi

from chalicelib.pipeline import validation_report
from flowers_cli.output import format_status
from pipeline_fixtures import output_archive
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


def test_summary_caps_the_list_and_counts_the_rest():
    skipped = [{"path": f"x/{i:04d}.jpg", "reason": "corrupt" if i % 2 else "no_label", "detail": "d" * 1000}
               for i in range(250)]
    summary = validation_report.summary({"skipped": skipped, "usable_images": 9, "ignored_files": ["a.txt"]}, "job")
    assert summary["skipped_count"] == 250 and len(summary["skipped"]) == 200 and summary["skipped_not_listed"] == 50
    assert summary["skipped_by_reason"] == {"corrupt": 125, "no_label": 125}
    assert summary["skipped"][0] == {"file": "x/0000.jpg", "reason": "no_label", "detail": "d" * validation_report.MAX_DETAIL}
    assert summary["ignored_count"] == 1 and summary["ignored_not_listed"] == 0
    text = format_status({"validation": summary})
    assert "250 skipped (corrupt 125, no_label 125)" in text and "... and 200 more" in text  # 50 printed of 250


def test_archive_without_report_or_unreadable_is_no_report():
    assert validation_report.from_archive(b"not a tar") is None
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("other.txt")
        archive.addfile(info, io.BytesIO(b""))
    assert validation_report.from_archive(buffer.getvalue()) is None
    assert validation_report.from_archive(output_archive({"skipped": []})) == {"skipped": []}

    def missing(uri):
        raise FileNotFoundError(uri)

    assert validation_report.read_archive(missing, "s3://b/k") is None


def test_a_found_report_is_read_once_a_missing_one_again():
    calls = []
    cache = validation_report.ReportCache()

    def read(answer):
        calls.append(answer)
        return answer

    assert cache.get("job", lambda: read(None)) is None
    assert cache.get("job", lambda: read({"skipped": []})) == {"skipped": []}
    assert cache.get("job", lambda: read({"other": 1})) == {"skipped": []}
    assert calls == [None, {"skipped": []}]
