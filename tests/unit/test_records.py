"""chalicelib/pipeline/records.py: a running run remembers whether it was forced full, and reads old records."""
from __future__ import annotations

from chalicelib.pipeline.records import Running


def test_running_remembers_full_and_reads_old_and_odd_dicts():
    running = Running("v1", "job", "launching", 1.0, 1.0, full=True)
    assert running.as_dict()["full"] is True and Running.from_dict(running.as_dict()) == running
    stored_before = {k: v for k, v in running.as_dict().items() if k != "full"}  # a run stored before `full` existed
    assert Running.from_dict(stored_before).full is False
    for value, full in ((True, True), (1, True), ("true", True), ("True", True), (False, False), (0, False), ("false", False),
                        ("", False), (None, False)):
        assert Running.from_dict({**stored_before, "full": value}).full is full, value


def test_a_versions_first_run_keeps_its_version_and_each_rerun_gets_a_model_version_of_its_own():
    from chalicelib.pipeline.job_names import VERSION
    from chalicelib.pipeline.records import Outcome, RunRecord, model_version

    version = "0123456789abcdef"
    assert model_version(version, "") == version  # every run before reruns existed, and each version's first
    reruns = {model_version(version, f"flowers-{version}-a{n}") for n in (2, 3, 4)}
    assert len(reruns) == 3 and version not in reruns and all(VERSION.match(v) for v in reruns)  # the API's pattern
    assert model_version(version, f"flowers-{version}-a2") == model_version(version, f"flowers-{version}-a2")  # a replay
    assert model_version("fedcba9876543210", f"flowers-{version}-a2") not in reruns
    run_id = f"flowers-{version}-a2"
    rerun = Running(version, run_id, "launching", 1.0, 1.0, attempt=2, run_id=run_id)
    assert rerun.model_version == RunRecord(version, run_id, "failed", 1.0, run_id=run_id).model_version \
        == Outcome(version, run_id, "failed", "why", 2.0, run_id=run_id).model_version == model_version(version, run_id)


def test_a_run_by_hand_keeps_its_caller_and_reason_and_old_dicts_have_none():
    from chalicelib.contract.vocabulary import ActorKind, Via
    from chalicelib.pipeline.actors import Actor
    from chalicelib.pipeline.records import run_action

    alice = Actor("arn:aws:sts::123456789012:assumed-role/Ops/alice", ActorKind.IAM, Via.CLI, "123456789012")
    running = Running("v1", "job", "launching", 1.0, 1.0, run_id="job", requested_by=alice, request_reason="same photos again")
    stored = running.as_dict()
    assert stored["requested_by"] == {"principal": alice.principal, "kind": "iam", "via": "cli", "account": "123456789012"}
    assert Running.from_dict(stored) == running
    action = run_action(running)
    assert action is not None and (action.command, action.by, action.reason, action.at) == ("run", alice, "same photos again", 1.0)
    old = {k: v for k, v in stored.items() if k not in ("requested_by", "request_reason", "run_id")}
    assert Running.from_dict(old).requested_by is None and run_action(Running.from_dict(old)) is None
