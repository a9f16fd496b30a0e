"""flowers_cli/output.py: a model without per-class figures says so."""
from __future__ import annotations

from flowers_cli.output import format_model


def test_a_model_without_per_class_figures_says_so():
    text = format_model({"version": "0123456789abcdef", "status": "approved", "metrics": {"test_accuracy": 0.9}})
    assert "no per-class figures for this model" in text
    with_baseline = format_model({"version": "0123456789abcdef", "status": "pending", "metrics": {
        "per_class": {"a": {"precision": 1, "recall": 1, "f1": 1, "support": 2}}, "confused_pairs": [],
        "baseline": {"accuracy": 0.5, "per_class": {"a": {"precision": 1, "recall": 0.5, "f1": 2 / 3, "support": 2}}}}})
    assert "F1 of the model served then" in with_baseline and with_baseline.splitlines()[2].split()[-3:] == ["2", "66.7", "%"]
    assert "most confused none" in with_baseline
    older = format_model({"version": "0123456789abcdef", "status": "approved",
                          "metrics": {"per_class": {"a": {"precision": 1, "recall": 0.5, "support": 2}}}})
    assert "a 100.0 % 50.0 % - 2".split() in [line.split() for line in older.splitlines()] and "most confused" not in older


def test_status_lists_who_did_what_and_a_reruns_model_version_and_older_servers_say_nothing():
    from flowers_cli.events import describe
    from flowers_cli.output import format_status

    alice = {"principal": "arn:aws:sts::123456789012:assumed-role/Ops/alice", "kind": "iam", "via": "cli"}
    status = {"dataset": {"uri": "s3://b/p/", "version": "0123456789abcdef"}, "next_run": {"action": "idle", "reason": "-"},
              "last_outcome": {"status": "registered", "model_status": "approved", "version": "0123456789abcdef",
                               "model_version": "fedcba9876543210", "at": "t", "reason": "ok"},
              "operator_actions": [
                  {"command": "run", "by": alice, "reason": "again", "at": "t2", "dataset_version": "0123456789abcdef",
                   "model_version": "fedcba9876543210"},
                  {"command": "reject", "by": {**alice, "principal": "bob", "kind": "local", "via": "http"}, "reason": "blurry",
                   "at": "t1", "dataset_version": "0123456789abcdef", "model_version": "0123456789abcdef"}]}
    lines = format_status(status).splitlines()
    assert "last outcome  registered (approved) 0123456789abcdef (model fedcba9876543210) at t: ok" in lines
    start = lines.index("operator actions (newest first)")
    assert lines[start + 1:] == [f"  t2 run      data set 0123456789abcdef by {alice['principal']} (iam, cli): again",
                                 "  t1 reject   0123456789abcdef by bob (local, http): blurry"]
    older = format_status({k: v for k, v in status.items() if k != "operator_actions"})
    assert "operator actions" not in older
    event = {"time": "t", "type": "Model Rolled Back", "version": None, "rejected": "0123456789abcdef", "reason": "blurry"}
    assert describe(event).endswith("0123456789abcdef rejected, serving none (blurry)")
    assert describe({**event, "by": alice}).endswith(f"(blurry) by {alice['principal']} (iam, cli)")
    assert describe({**event, "by": None}).endswith("(blurry)")
