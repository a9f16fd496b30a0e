"""`flowers keys create|list|revoke`: a key per client of the deployed API, each with its own usage plan.

Runs with your AWS credentials against the stack named by --stack (or $FLOWERS_STACK): CloudFormation for its outputs
(ApiId, ApiUrl, ClientKeyLimits), then API Gateway (apigateway:POST/GET/PATCH/DELETE on /apikeys and /usageplans).
What is decided (names, limits) is chalicelib/api/client_keys.py's; the calls are chalicelib/adapters/aws/api_keys.py's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from chalicelib.api.client_keys import KeyPolicy, KeyProblem, check_name, format_keys, limits
from flowers_cli.client import CloudError, stack_outputs
from flowers_cli.errors import RUNTIME, UsageError

if TYPE_CHECKING:
    from chalicelib.adapters.aws.api_keys import ApiGatewayKeys

OUTPUTS = ("ApiId", "ApiUrl", "ClientKeyLimits")


def _keys(args: argparse.Namespace) -> tuple[ApiGatewayKeys, KeyPolicy]:
    import boto3

    from chalicelib.adapters.aws.api_keys import ApiGatewayKeys

    stack = args.stack or os.environ.get("FLOWERS_STACK", "")
    if not stack:
        raise UsageError("flowers keys manages a deployed stack's API keys: --stack NAME (or FLOWERS_STACK)")
    session = boto3.session.Session()
    outputs = stack_outputs(stack, session, OUTPUTS)
    # The stage is the first segment of the API's URL (https://ID.execute-api.REGION.amazonaws.com/STAGE/).
    stage = urllib.parse.urlsplit(outputs["ApiUrl"]).path.strip("/").split("/")[0]
    if not stage:
        raise CloudError(f"stack {stack!r}'s ApiUrl {outputs['ApiUrl']!r} names no stage")
    try:
        policy = KeyPolicy.from_json(outputs["ClientKeyLimits"])
    except KeyProblem as exc:
        raise CloudError(str(exc)) from None
    return ApiGatewayKeys(session.client("apigateway"), stack, outputs["ApiId"], stage), policy


def create(args: argparse.Namespace) -> int:
    from chalicelib.adapters.aws.api_keys import KeyConflict

    try:
        name = check_name(args.name)  # before any AWS call: a bad name needs no credentials to be refused
        keys, policy = _keys(args)
        chosen = limits(policy, args.rate, args.burst, args.quota)
    except KeyProblem as exc:
        raise UsageError(str(exc)) from None
    try:
        value = keys.create(name, chosen)
    except KeyConflict as exc:
        print(f"error: {exc}", file=sys.stderr)
        return RUNTIME
    # The value alone on stdout (KEY=$(flowers keys create ...)); what it is on stderr.
    print(f"key {name} created on stack {keys.stack}: {chosen}. Its value follows, shown this once: keep it in the "
          f"client's secret store; `flowers keys revoke {name}` ends it", file=sys.stderr)
    print(value)
    return 0


def list_keys(args: argparse.Namespace) -> int:
    keys, _ = _keys(args)
    found = keys.list()
    if args.json:
        print(json.dumps([asdict(k) for k in sorted(found, key=lambda k: k.name)], indent=2))
    else:
        print(format_keys(found))
    return 0


def revoke(args: argparse.Namespace) -> int:
    try:
        name = check_name(args.name)
    except KeyProblem as exc:
        raise UsageError(str(exc)) from None
    keys, _ = _keys(args)
    deleted_keys, deleted_plans = keys.revoke(name)
    if not deleted_keys and not deleted_plans:
        print(f"error: no key {name!r} on stack {keys.stack!r} (flowers keys list shows them)", file=sys.stderr)
        return RUNTIME
    if deleted_keys:
        print(f"key {name} revoked on stack {keys.stack}: the key and its usage plan are deleted, so API Gateway "
              "refuses it (403); every other key works as before")
    else:  # a revoke that stopped half way before: the key was gone, its plan is now too
        print(f"key {name} was already deleted on stack {keys.stack}; its usage plan is deleted now")
    return 0


def add_parser(commands: Any, stack_option: Any) -> None:
    """`flowers keys ...` on the CLI's parser (flowers_cli/main.py)."""
    keys = commands.add_parser("keys", help="the deployed API's keys, one per client (script, integration), "
                                            "each with its own usage plan: create, list, revoke")
    actions = keys.add_subparsers(dest="action", required=True, help="create, list or revoke")
    made = actions.add_parser("create", help="a new key with its own throttle and daily quota; prints its value once")
    made.add_argument("name", help="the client's name: 1-32 lower-case letters, digits and '-' (e.g. ci-nightly)")
    made.add_argument("--rate", type=float, help="requests per second, steady (default: the stack's client_key_rate_limit)")
    made.add_argument("--burst", type=int, help="requests at once (default: the stack's client_key_burst_limit)")
    made.add_argument("--quota", type=int, help="requests a day (UTC) (default: the stack's client_key_quota_per_day)")
    made.set_defaults(run=create)
    listed = actions.add_parser("list", help="every client key of the stack: name, created, limits, enabled (no values)")
    listed.add_argument("--json", action="store_true", help="as JSON")
    listed.set_defaults(run=list_keys)
    revoked = actions.add_parser("revoke", help="delete a key and its usage plan: requests with it get 403; other keys "
                                                "are untouched")
    revoked.add_argument("name", help="the client's name, as `flowers keys list` shows it")
    revoked.set_defaults(run=revoke)
    for action in (made, listed, revoked):
        stack_option(action)
