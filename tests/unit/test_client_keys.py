"""chalicelib/api/client_keys.py: a client key's name, its tags, its limits (the stack's defaults and ceilings)."""
from __future__ import annotations

import pytest

from chalicelib.api.client_keys import (
    ClientKey,
    KeyPolicy,
    KeyProblem,
    Limits,
    check_name,
    client_name,
    format_keys,
    limits,
    limits_problem,
    plan_limits,
    resource_name,
    tags,
)

POLICY = KeyPolicy(Limits(5.0, 10, 10_000), max_rate=20.0, max_burst=40)


@pytest.mark.parametrize("name", ["a", "ci", "ci-nightly", "partner2", "0", "a" * 32])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-ci", "ci-", "CI", "ci_nightly", "ci nightly", "a" * 33, "ci/x", "é"])
def test_bad_names_are_refused_in_one_line(name):
    with pytest.raises(KeyProblem, match="bad key name") as caught:
        check_name(name)
    assert "\n" not in str(caught.value)


def test_a_key_and_its_plan_are_named_and_tagged_by_stack():
    assert resource_name("flowers", "ci") == "flowers-key-ci"
    assert tags("flowers-dev", "ci") == {"flowers:stack": "flowers-dev", "flowers:key": "ci"}
    with pytest.raises(KeyProblem):
        resource_name("flowers", "Bad Name")


def test_a_key_is_one_of_the_stacks_by_its_tags_and_its_name():
    ours = {"name": "flowers-key-ci", "tags": tags("flowers", "ci")}
    assert client_name("flowers", ours) == "ci"
    assert client_name("flowers-dev", ours) is None  # another stack's
    assert client_name("flowers", {"name": "flowers-key-ci"}) is None  # untagged: made by hand, not ours to list or delete
    assert client_name("flowers", {"name": "flowers-page", "tags": {"flowers:stack": "flowers"}}) is None  # the page's
    # Same name, two readings: stack a's key "key-b" and stack "a-key"'s key "b". The tags tell them apart.
    theirs = {"name": "a-key-key-b", "tags": tags("a-key", "b")}
    assert client_name("a", theirs) is None and client_name("a-key", theirs) == "b"
    assert client_name("flowers", {"name": "flowers-key-other", "tags": tags("flowers", "ci")}) is None  # renamed


def test_limits_default_to_the_stacks_and_may_be_given():
    assert limits(POLICY) == Limits(5.0, 10, 10_000)
    assert limits(POLICY, rate=0.5) == Limits(0.5, 10, 10_000)
    assert limits(POLICY, rate=20, burst=40, quota=1) == Limits(20.0, 40, 1)


@pytest.mark.parametrize("given, says", [
    ({"rate": 0}, "--rate 0: must be more than 0"),
    ({"rate": -1}, "--rate -1: must be more than 0"),
    ({"rate": float("nan")}, "--rate nan"),
    ({"rate": 20.5}, "the API's stage allows 20 requests/s"),
    ({"burst": 0}, "--burst 0: must be 1 or more"),
    ({"burst": 41}, "the API's stage allows bursts of 40"),
    ({"quota": 0}, "--quota 0: between 1 and"),
    ({"quota": 10**9}, "--quota 1000000000: between 1 and"),
])
def test_limits_a_plan_cannot_grant_are_refused(given, says):
    with pytest.raises(KeyProblem, match=says.replace("(", r"\(")):
        limits(POLICY, **given)


def test_the_stacks_own_defaults_are_checked_by_the_same_rule():
    assert limits_problem(Limits(5.0, 10, 10_000), 20.0, 40) == ""
    assert "stage allows 20" in limits_problem(Limits(25.0, 10, 10_000), 20.0, 40)


def test_the_policy_travels_as_the_stacks_output_and_back():
    assert KeyPolicy.from_json(POLICY.to_json()) == POLICY
    with pytest.raises(KeyProblem, match="ClientKeyLimits"):
        KeyPolicy.from_json('{"rate": 5}')
    with pytest.raises(KeyProblem, match="ClientKeyLimits"):
        KeyPolicy.from_json("not json")


def test_a_plans_limits_as_api_gateway_answers_them():
    plan = {"throttle": {"rateLimit": 5.0, "burstLimit": 10}, "quota": {"limit": 100, "period": "DAY", "offset": 0}}
    assert plan_limits(plan) == Limits(5.0, 10, 100)
    assert plan_limits({"name": "no limits"}) is None


def test_the_list_shows_no_values_and_says_when_a_plan_is_missing():
    shown = format_keys([ClientKey("zeta", "id2", "2026-01-02T03:04:05Z", False, None),
                         ClientKey("alpha", "id1", "2026-01-01T00:00:00Z", True, Limits(5.0, 10, 10_000))])
    lines = shown.splitlines()
    assert lines[0].split() == ["NAME", "CREATED", "RATE/S", "BURST", "QUOTA/DAY", "ENABLED"]
    assert lines[1].split() == ["alpha", "2026-01-01T00:00:00Z", "5", "10", "10,000", "yes"]
    assert lines[2].startswith("zeta") and "no plan" in lines[2] and lines[2].endswith("no")
    assert format_keys([]).startswith("no client keys")
