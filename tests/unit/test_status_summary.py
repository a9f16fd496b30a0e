"""chalicelib/pipeline/status_summary.py: GET /status without operator data (issue 28, item 4)."""
from __future__ import annotations

import json

from chalicelib.pipeline.status_summary import summary

OPERATOR_ONLY = ("roses/r0.jpg", "tulips/t1.jpg", "notes/x.txt", "flowers-abc-a1", "flowers-abc-conv", "arn:aws:sts::",
                 "s3://data-bucket", "AccessDenied", "epoch 3 loss", "why the debounce waits")

STATUS = {
    "dataset": {"uri": "s3://data-bucket/datasets/flowers/", "version": "abc"},
    "pending_uploads": 3, "last_upload_at": "2026-11-28T08:00:00+00:00",
    "running_job": {"version": "abc", "training_job": "flowers-abc-a1", "stage": "converting",
                    "conversion_job": "flowers-abc-conv", "started_at": "2026-11-28T08:01:00+00:00", "attempt": 2,
                    "failed_attempts": ["AccessDenied on s3://data-bucket/x"], "retry_at": None, "model_version": "0123456789abcdef",
                    "requested_by": {"principal": "arn:aws:sts::1:assumed-role/Ops/alice", "kind": "iam", "via": "cli"},
                    "request_reason": "tulips/t1.jpg looked odd",
                    "progress": {"kind": "training", "attempt": 2, "phase": "fine_tune", "epoch": 3, "metrics": {"accuracy": 0.5},
                                 "last_line": "epoch 3 loss", "earlier_attempts": [{"reason": "AccessDenied"}]}},
    "last_outcome": {"version": "abb", "job_name": "flowers-abc-a1", "status": "failed", "model_status": "",
                     "reason": "preparing the run failed: reading s3://data-bucket/training.json: AccessDenied", "at": "t",
                     "model_version": "0123456789abcdee", "run_id": ""},
    "next_run": {"action": "busy", "reason": "why the debounce waits", "in_seconds": 0},
    "validation": {"training_job": "flowers-abc-a1", "dataset_version": "abc", "layout": "folders", "usable_images": 10,
                   "skipped_count": 1, "skipped_by_reason": {"corrupt": 1},
                   "skipped": [{"file": "roses/r0.jpg", "reason": "corrupt", "detail": "truncated"}], "skipped_not_listed": 0,
                   "ignored_count": 1, "ignored_files": ["notes/x.txt"], "ignored_not_listed": 0,
                   "label_issues": {"count": 1, "photos": 10, "issues": [{"file": "tulips/t1.jpg", "given": "tulips",
                                                                           "suggested": "roses", "confidence": 0.9}],
                                    "not_listed": 0, "skipped": None},
                   "class_balance": {"status": "balanced", "largest_to_smallest": 1.5, "class_weights": None,
                                     "min_recommended": 20, "warnings": ["roses: 4 photos, under 20"]}},
    "operator_actions": [{"command": "approve", "by": {"principal": "arn:aws:sts::1:assumed-role/Ops/alice"}}],
    "local": {"bucket_folder": "/home/alice/.flowers/bucket"},
}


def test_the_summary_names_no_file_job_principal_or_reason():
    found = summary(STATUS)
    # flowers up's own facts stay: the page's empty state names the folder photos go to (the local server answers
    # loopback Hosts only; that folder's files are the file system's to guard)
    assert found.pop("local") == {"bucket_folder": "/home/alice/.flowers/bucket"}
    text = json.dumps(found)
    for secret in OPERATOR_ONLY + ("/home/alice",):
        assert secret not in text, secret
    assert "operator_actions" not in text and "training_job" not in text


def test_the_summary_keeps_what_the_page_shows_a_visitor():
    found = summary(STATUS)
    assert found["pending_uploads"] == 3 and found["dataset"] == {"version": "abc"}
    assert found["running_job"] == {"version": "abc", "stage": "converting", "started_at": "2026-11-28T08:01:00+00:00",
                                    "attempt": 2, "retry_at": None, "model_version": "0123456789abcdef",
                                    "progress": {"kind": "training", "attempt": 2, "phase": "fine_tune", "epoch": 3,
                                                 "metrics": {"accuracy": 0.5}}}
    assert found["last_outcome"] == {"version": "abb", "model_version": "0123456789abcdee", "status": "failed",
                                     "model_status": "", "at": "t"}
    assert found["next_run"] == {"action": "busy", "in_seconds": 0}
    validation = found["validation"]
    assert validation["skipped_by_reason"] == {"corrupt": 1} and validation["usable_images"] == 10
    assert validation["label_issues"] == {"count": 1, "photos": 10, "skipped": None}
    assert validation["class_balance"]["warnings"] == ["roses: 4 photos, under 20"]


def test_an_idle_pipeline_summarises_to_nulls():
    found = summary({"dataset": {"uri": "s3://b/p/", "version": ""}, "pending_uploads": 0, "last_upload_at": None,
                     "running_job": None, "last_outcome": None, "next_run": {"action": "idle", "reason": "r", "in_seconds": 0},
                     "validation": None})
    assert found["running_job"] is None and found["last_outcome"] is None and found["validation"] is None
