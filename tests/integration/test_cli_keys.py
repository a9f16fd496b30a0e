"""`flowers keys create|list|revoke` against moto's CloudFormation and API Gateway, and the stand-in gateway of
test_cli_cloud.py deciding each key route the way API Gateway does, from moto's API Gateway state.

What the stand-in proves: after `flowers keys create` and `revoke`, API Gateway's state (moto's) is such that its
documented rule for a method with apiKeyRequired (the x-api-key names an existing, enabled key that a usage plan on the
request's stage holds) refuses the revoked key with 403 and accepts the other; the request then reaches the app. What it
cannot prove: that real API Gateway applies that rule as documented, nor how soon after the deletion (moto has no
gateway of its own).
"""
from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import pytest
from test_cli_cloud import REGION, Gateway, gateway, run  # noqa: F401  (gateway: fixture)

from chalicelib.api.client_keys import KeyPolicy, Limits
from flowers_cli import main as cli

STACK = "flowers"
STAGE = "api"
POLICY = KeyPolicy(Limits(5.0, 10, 10_000), max_rate=20.0, max_burst=40)


def accepts(apigateway: Any, api_id: str, stage: str) -> Callable[[str], bool]:
    """API Gateway's key check for a method with apiKeyRequired, asked of moto's state on every request."""
    def ok(value: str) -> bool:
        keys = apigateway.get_api_keys(includeValues=True, limit=500)["items"]
        for key in keys:
            if value and key.get("value") == value and key.get("enabled"):
                plans = apigateway.get_usage_plans(keyId=key["id"])["items"]
                return any(s["apiId"] == api_id and s["stage"] == stage for p in plans for s in p.get("apiStages", []))
        return False

    return ok


class Cloud:
    def __init__(self, apigateway: Any, api_id: str, page_key: str):
        self.apigateway, self.api_id, self.page_key = apigateway, api_id, page_key

    def names(self, kind: str) -> set[str]:
        call = self.apigateway.get_api_keys if kind == "keys" else self.apigateway.get_usage_plans
        return {item["name"] for item in call()["items"]}


def _stack(cloudformation: Any, name: str, url: str, api_id: str, page_key_id: str) -> None:
    outputs = {"ApiUrl": url, "ApiKeyId": page_key_id, "ApiId": api_id, "ClientKeyLimits": POLICY.to_json()}
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps({
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()}}))


@pytest.fixture
def cloud(gateway: Gateway, monkeypatch) -> Iterator[Cloud]:  # noqa: F811
    import os

    import boto3
    from moto import mock_aws

    with mock_aws():
        apigateway = boto3.client("apigateway", region_name=REGION)
        api_id = apigateway.create_rest_api(name=STACK)["id"]
        root = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
        apigateway.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE", apiKeyRequired=True)
        apigateway.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
        apigateway.create_deployment(restApiId=api_id, stageName=STAGE)
        # The stack's own key, the web page's, as the stack makes it: a key, a plan on the stage, the two joined.
        page = apigateway.create_api_key(name=f"{STACK}-page", enabled=True)
        plan = apigateway.create_usage_plan(name=f"{STACK}-page", apiStages=[{"apiId": api_id, "stage": STAGE}],
                                            throttle={"rateLimit": 20.0, "burstLimit": 40}, quota={"limit": 50_000, "period": "DAY"})
        apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=page["id"], keyType="API_KEY")
        _stack(boto3.client("cloudformation", region_name=REGION), STACK, gateway.url, api_id, page["id"])
        gateway.secrets = {os.environ["AWS_ACCESS_KEY_ID"]: os.environ["AWS_SECRET_ACCESS_KEY"]}  # moto's credentials
        gateway.key_ok = accepts(apigateway, api_id, STAGE)
        monkeypatch.setenv("FLOWERS_STACK", STACK)
        yield Cloud(apigateway, api_id, page["value"])


def test_a_revoked_key_gets_403_while_another_key_and_the_page_key_work(cloud, gateway, capsys):  # noqa: F811
    code, alpha, err = run(capsys, "keys", "create", "alpha", "--rate", "2", "--burst", "4", "--quota", "100")
    assert code == 0 and "key alpha created on stack flowers: 2 requests/s, burst 4, 100 a day" in err
    alpha = alpha.strip()
    code, beta, err = run(capsys, "keys", "create", "beta")  # the stack's defaults
    beta = beta.strip()
    assert code == 0 and "5 requests/s, burst 10, 10,000 a day" in err and len(beta) >= 20 and beta != alpha
    assert cloud.names("keys") == {"flowers-page", "flowers-key-alpha", "flowers-key-beta"} == cloud.names("plans")

    code, listed, _ = run(capsys, "keys", "list")
    assert code == 0 and alpha not in listed and beta not in listed  # never a value
    rows = {line.split()[0]: line.split() for line in listed.splitlines()[1:]}
    assert set(rows) == {"alpha", "beta"}  # the page's key is the stack's, not a client's
    assert rows["alpha"][2:] == ["2", "4", "100", "yes"] and rows["beta"][2:] == ["5", "10", "10,000", "yes"]

    for key in (alpha, beta, cloud.page_key):
        code, out, err = run(capsys, "models", "--json", "--url", gateway.url, "--api-key", key)  # a key route
        assert code == 0 and isinstance(json.loads(out), list), err

    code, out, _ = run(capsys, "keys", "revoke", "alpha")
    assert code == 0 and "key alpha revoked on stack flowers" in out
    code, _, err = run(capsys, "models", "--url", gateway.url, "--api-key", alpha)
    assert code == 1 and "HTTP 403: Forbidden" in err
    for key in (beta, cloud.page_key):
        code, out, err = run(capsys, "models", "--json", "--url", gateway.url, "--api-key", key)
        assert code == 0, err

    code, out, _ = run(capsys, "keys", "list", "--json")
    (left,) = json.loads(out)
    assert left["name"] == "beta" and left["enabled"] is True and left["limits"] == {"rate": 5.0, "burst": 10, "quota_per_day": 10_000}
    assert cloud.names("keys") == {"flowers-page", "flowers-key-beta"} == cloud.names("plans")
    # what reached the app: the three keys before, then beta and the page's after; alpha's request stopped at the gateway
    assert [h.get("x-api-key") for _, path, h in gateway.seen if path.startswith("/api/models")] == [
        alpha, beta, cloud.page_key, alpha, beta, cloud.page_key]


def test_the_stand_in_refuses_what_api_gateway_would(cloud, gateway, capsys):  # noqa: F811
    """Its check can fail: a disabled key, and a key with no plan on this stage, get 403 too."""
    _, value, _ = run(capsys, "keys", "create", "gamma")
    value = value.strip()
    key_id = cloud.apigateway.get_api_keys(nameQuery="flowers-key-gamma")["items"][0]["id"]
    cloud.apigateway.update_api_key(apiKey=key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}])
    code, _, err = run(capsys, "models", "--url", gateway.url, "--api-key", value)
    assert code == 1 and "HTTP 403" in err
    loose = cloud.apigateway.create_api_key(name="loose", enabled=True)["value"]  # in no usage plan
    code, _, err = run(capsys, "models", "--url", gateway.url, "--api-key", loose)
    assert code == 1 and "HTTP 403" in err
    code, listed, _ = run(capsys, "keys", "list")
    assert listed.splitlines()[1].split()[-1] == "no"  # gamma, disabled


@pytest.mark.parametrize("args, says", [
    (["create", "Bad_Name"], "bad key name 'Bad_Name'"),
    (["create", "ok", "--rate", "0"], "--rate 0: must be more than 0"),
    (["create", "ok", "--rate", "500"], "the API's stage allows 20 requests/s"),
    (["create", "ok", "--burst", "0"], "--burst 0: must be 1 or more"),
    (["create", "ok", "--burst", "41"], "the API's stage allows bursts of 40"),
    (["create", "ok", "--quota", "0"], "--quota 0: between 1 and"),
    (["create", "ok", "--rate", "fast"], "argument --rate: invalid float value: 'fast'"),  # argparse's own
    (["create"], "the following arguments are required: name"),
    (["revoke", "UPPER"], "bad key name 'UPPER'"),
])
def test_bad_names_and_limits_are_one_line_and_exit_2_and_make_nothing(cloud, capsys, args, says):
    try:
        code = cli.main(["keys", *args])
    except SystemExit as exit:  # argparse's own refusals exit from parse_args, with the CLI's one-line format
        code = int(exit.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and says in err and err.count("\n") == 1, err
    assert cloud.names("keys") == {"flowers-page"} == cloud.names("plans")


def test_an_existing_name_an_unknown_name_and_no_stack_are_refused(cloud, capsys, monkeypatch):
    assert run(capsys, "keys", "create", "ci")[0] == 0
    code, out, err = run(capsys, "keys", "create", "ci")
    assert code == 1 and out == "" and "key 'ci' exists on stack 'flowers': revoke it first" in err
    code, _, err = run(capsys, "keys", "revoke", "nobody")
    assert code == 1 and "no key 'nobody' on stack 'flowers' (flowers keys list shows them)" in err
    monkeypatch.delenv("FLOWERS_STACK")
    code, _, err = run(capsys, "keys", "list")
    assert code == 2 and "--stack NAME (or FLOWERS_STACK)" in err
    code, _, err = run(capsys, "keys", "list", "--stack", "no-such-stack")
    assert code == 2 and "cannot read stack 'no-such-stack'" in err


def test_keys_are_found_by_stack_and_tags_and_a_half_done_revoke_finishes(cloud, capsys):
    import boto3

    # Another stack in the same account and region, with a key of the same client name: untouched by this stack's commands.
    _stack(boto3.client("cloudformation", region_name=REGION), "flowers-dev", "http://127.0.0.1:9/api/", cloud.api_id, "x")
    assert run(capsys, "keys", "create", "ci", "--stack", "flowers-dev")[0] == 0
    assert run(capsys, "keys", "create", "ci")[0] == 0
    # A key made by hand under a client key's name, without the tags: not ours, neither listed nor deleted.
    cloud.apigateway.create_api_key(name="flowers-key-manual", enabled=True)
    _, listed, _ = run(capsys, "keys", "list")
    assert [line.split()[0] for line in listed.splitlines()[1:]] == ["ci"]
    assert run(capsys, "keys", "revoke", "manual")[0] == 1

    # A revoke stopped after deleting the key: the plan is left. Revoking again deletes it, and says so.
    (key,) = [k for k in cloud.apigateway.get_api_keys()["items"] if k["name"] == "flowers-key-ci"]
    cloud.apigateway.delete_api_key(apiKey=key["id"])
    code, out, _ = run(capsys, "keys", "revoke", "ci")
    assert code == 0 and "already deleted" in out and "usage plan is deleted now" in out
    assert cloud.names("keys") == {"flowers-page", "flowers-key-manual", "flowers-dev-key-ci"}
    assert cloud.names("plans") == {"flowers-page", "flowers-dev-key-ci"}
    _, listed, _ = run(capsys, "keys", "list", "--stack", "flowers-dev")
    assert [line.split()[0] for line in listed.splitlines()[1:]] == ["ci"]
