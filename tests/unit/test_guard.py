"""chalicelib/local_stack/guard.py's decisions: which Host headers `flowers up` answers, and the operator token's check."""
from __future__ import annotations

import pytest

from chalicelib.local_stack import guard


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LocalHost:8000", " localhost:8000 "])
def test_loopback_names_on_the_bound_port_are_answered(host):
    assert guard.host_allowed(host, 8000)


@pytest.mark.parametrize("host", [
    "evil.example:8000",        # DNS rebinding: the attacker's name, resolved to 127.0.0.1
    "evil.example", "localhost.evil.example:8000", "127.0.0.1.evil.example:8000", "localhost:8001", "127.0.0.1",
    "localhost", "[::1]", "0.0.0.0:8000", "127.0.0.2:8000", "[::ffff:127.0.0.1]:8000", "localhost:8000:8000",
    "", None])
def test_any_other_host_is_refused(host):
    assert not guard.host_allowed(host, 8000)


def test_on_port_80_the_port_may_be_left_out():
    assert guard.host_allowed("localhost", 80) and guard.host_allowed("127.0.0.1:80", 80)
    assert not guard.host_allowed("evil.example", 80)


def test_the_token_travels_as_a_bearer_authorization():
    token = "s3cret-token"
    assert guard.token_matches(token, {"Authorization": f"Bearer {token}"})
    assert guard.token_matches(token, {"authorization": f"bearer  {token} "})
    for headers in ({}, {"Authorization": token}, {"Authorization": f"Basic {token}"}, {"X-Flowers-Token": token},
                    {"Authorization": f"Bearer {token}x"}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {token[:-1]}"}):
        assert not guard.token_matches(token, headers), headers


def test_an_empty_expected_token_matches_nothing():
    assert not guard.token_matches("", {"Authorization": "Bearer "}) and not guard.token_matches("", {})
