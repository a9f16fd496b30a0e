"""chalicelib/pipeline/run_result.py: each kind of result answers the dict the Lambdas have always returned and
POST /runs sent: the same keys, in the same order, none it does not have."""
from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.contract.vocabulary import Action
from chalicelib.contract.warm_start import FORCED_FULL, StartFrom
from chalicelib.pipeline.run_result import RunResult

STARTED = RunResult(Action.STARTED, job="flowers-v1", version="v1")
FAILED = RunResult(Action.FAILED, "training failed: boom", version="v1", model_status="",
                   next=RunResult(Action.IDLE, "0 changed object(s), need 1"))


@pytest.mark.parametrize("result, answer", [
    (RunResult(Action.WAIT, "last upload 5s ago, quiet period 600s"), [("action", "wait"), ("reason", "last upload 5s ago, quiet period 600s")]),
    (RunResult(Action.HEALED, "lost", version="v2"), [("action", "healed"), ("reason", "lost"), ("version", "v2")]),
    (RunResult(Action.SKIPPED, "the data set is empty"), [("action", "skipped"), ("reason", "the data set is empty")]),
    (STARTED, [("action", "started"), ("job", "flowers-v1"), ("version", "v1")]),
    # POST /runs: where the run starts from, and the operator's reason last
    (replace(STARTED, start_from=StartFrom("imagenet", FORCED_FULL, chain=0), reason="drifted"),
     [("action", "started"), ("job", "flowers-v1"), ("version", "v1"), ("start_from", {"kind": "imagenet", "reason": FORCED_FULL}),
      ("reason", "drifted")]),
    (RunResult(Action.RETRYING, "capacity; retry 1 of 3", version="v1", in_seconds=300),
     [("action", "retrying"), ("reason", "capacity; retry 1 of 3"), ("version", "v1"), ("in_seconds", 300)]),
    (RunResult(Action.NOTED, job_status="InProgress"), [("action", "noted"), ("status", "InProgress")]),
    (RunResult(Action.CONVERTING, job="flowers-v1-convert"), [("action", "converting"), ("job", "flowers-v1-convert")]),
    (FAILED, [("action", "failed"), ("reason", "training failed: boom"), ("version", "v1"), ("model_status", ""),
              ("next", {"action": "idle", "reason": "0 changed object(s), need 1"})]),
    # a forced run refused by the job service: the operator's reason where the failure's was
    (replace(FAILED, reason="drifted", next=None), [("action", "failed"), ("reason", "drifted"), ("version", "v1"), ("model_status", "")]),
    # a replayed registration: an empty reason is still a reason
    (RunResult(Action.REGISTERED, "", version="v1", model_status="approved"),
     [("action", "registered"), ("reason", ""), ("version", "v1"), ("model_status", "approved")]),
])
def test_the_answer_has_todays_keys_in_todays_order(result, answer):
    assert list(result.as_dict().items()) == answer
    assert type(result.as_dict()["action"]) is str


def test_the_next_result_is_answered_in_full():
    nested = replace(FAILED, next=replace(FAILED, next=STARTED))
    assert nested.as_dict()["next"]["next"] == {"action": "started", "job": "flowers-v1", "version": "v1"}
