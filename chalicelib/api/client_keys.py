"""A key per client of the deployed API (`flowers keys`): the decisions, no AWS calls.

Every script or integration gets an API Gateway API key of its own, with a usage plan of its own on the stack's API
stage (its throttle and daily quota), so that revoking one leaves the others working and one client's quota is its
own. The key and its plan are both named `<stack>-key-<NAME>` and tagged with the stack and the name, so they are
found by stack (chalicelib/adapters/aws/api_keys.py makes the calls). The web page's key (`<stack>-page`) is the
stack's own (infra/flowers_infra/chalice_app.py) and never one of these.

The defaults and the ceilings come from the stack (its output ClientKeyLimits, from infra/flowers_infra/config.py):
a key's rate or burst above the stage's own throttle would never be reached, so it is refused rather than promised.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

STACK_TAG = "flowers:stack"  # the tags every client key and its plan carry
NAME_TAG = "flowers:key"
KEY_INFIX = "-key-"  # <stack>-key-<NAME>
PAGE_SUFFIX = "-page"  # <stack>-page: the web page's key and plan (the stack's, not a client key)
NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
QUOTA_PERIOD = "DAY"
MAX_QUOTA_PER_DAY = 100_000_000  # a sanity bound: a typo'd extra digit or two is refused, not granted


class KeyProblem(ValueError):
    """A name or a limit that cannot be granted; the message says why in one line."""


@dataclass(frozen=True)
class Limits:
    rate: float  # requests per second, steady
    burst: int  # requests at once
    quota_per_day: int

    def __str__(self) -> str:
        return f"{self.rate:g} requests/s, burst {self.burst}, {self.quota_per_day:,} a day"


@dataclass(frozen=True)
class KeyPolicy:
    """What the stack grants: the limits a key gets when none are given, and the stage's throttle above which a key's
    own limits would never bite."""
    defaults: Limits
    max_rate: float
    max_burst: int

    def to_json(self) -> str:
        return json.dumps({"rate": self.defaults.rate, "burst": self.defaults.burst,
                           "quota_per_day": self.defaults.quota_per_day, "max_rate": self.max_rate,
                           "max_burst": self.max_burst}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> KeyPolicy:
        try:
            document = json.loads(text)
            return cls(Limits(float(document["rate"]), int(document["burst"]), int(document["quota_per_day"])),
                       float(document["max_rate"]), int(document["max_burst"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyProblem(f"the stack's ClientKeyLimits output is not what flowers writes: {exc}") from None


@dataclass(frozen=True)
class ClientKey:
    """One client's key as `flowers keys list` shows it: never its value."""
    name: str
    key_id: str
    created: str  # ISO 8601, UTC
    enabled: bool
    limits: Limits | None  # None: no plan found (a revoke that stopped half way)


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise KeyProblem(f"bad key name {name!r}: 1 to 32 characters, lower-case letters, digits and '-', "
                         "starting and ending with a letter or digit (e.g. ci-nightly)")
    return name


def resource_name(stack: str, name: str) -> str:
    """The key's and its usage plan's name in API Gateway."""
    return f"{stack}{KEY_INFIX}{check_name(name)}"


def tags(stack: str, name: str) -> dict[str, str]:
    return {STACK_TAG: stack, NAME_TAG: check_name(name)}


def client_name(stack: str, resource: Mapping[str, Any]) -> str | None:
    """The client's name when the API Gateway key or plan is one of this stack's client keys. By its tags as well
    as its name: stack `a`'s key `key-b` and stack `a-key`'s key `b` are both named `a-key-key-b`."""
    found = resource.get("tags") or {}
    name = found.get(NAME_TAG, "")
    if found.get(STACK_TAG) != stack or not NAME_PATTERN.match(name) or resource.get("name") != f"{stack}{KEY_INFIX}{name}":
        return None
    return str(name)


def limits(policy: KeyPolicy, rate: float | None = None, burst: int | None = None, quota: int | None = None) -> Limits:
    """The key's limits: those given, the stack's defaults for the rest; refused when they cannot be granted."""
    chosen = Limits(policy.defaults.rate if rate is None else rate, policy.defaults.burst if burst is None else burst,
                    policy.defaults.quota_per_day if quota is None else quota)
    problem = limits_problem(chosen, policy.max_rate, policy.max_burst)
    if problem:
        raise KeyProblem(problem)
    return chosen


def limits_problem(chosen: Limits, max_rate: float, max_burst: int) -> str:
    """'' when a usage plan can grant these limits on a stage throttled at max_rate / max_burst, else why not."""
    if not chosen.rate > 0 or chosen.rate != chosen.rate:  # NaN too
        return f"--rate {chosen.rate:g}: must be more than 0 requests/s"
    if chosen.rate > max_rate:
        return (f"--rate {chosen.rate:g}: the API's stage allows {max_rate:g} requests/s in all, so a key cannot be "
                "promised more (raise api_rate_limit in the stack's settings first)")
    if chosen.burst < 1:
        return f"--burst {chosen.burst}: must be 1 or more"
    if chosen.burst > max_burst:
        return (f"--burst {chosen.burst}: the API's stage allows bursts of {max_burst}, so a key cannot be promised "
                "more (raise api_burst_limit in the stack's settings first)")
    if not 1 <= chosen.quota_per_day <= MAX_QUOTA_PER_DAY:
        return f"--quota {chosen.quota_per_day}: between 1 and {MAX_QUOTA_PER_DAY:,} requests a day"
    return ""


def plan_limits(plan: Mapping[str, Any]) -> Limits | None:
    """A usage plan's throttle and quota as API Gateway answers them (GetUsagePlans)."""
    throttle, quota = plan.get("throttle") or {}, plan.get("quota") or {}
    if "rateLimit" not in throttle or "limit" not in quota:
        return None
    return Limits(float(throttle["rateLimit"]), int(throttle.get("burstLimit", 0)), int(quota["limit"]))


def format_keys(keys: list[ClientKey]) -> str:
    if not keys:
        return "no client keys (flowers keys create NAME makes one)"
    rows = [("NAME", "CREATED", "RATE/S", "BURST", "QUOTA/DAY", "ENABLED")]
    for key in sorted(keys, key=lambda k: k.name):
        shown = key.limits
        rows.append((key.name, key.created, f"{shown.rate:g}" if shown else "-", str(shown.burst) if shown else "-",
                     f"{shown.quota_per_day:,}" if shown else "- (no plan: the key works nowhere)",
                     "yes" if key.enabled else "no"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
