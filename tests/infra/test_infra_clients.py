"""Issue 28, items 2 and 3 on the synthesized template: the WAF web ACL on the API stage (a per-IP rate rule from the
settings, AWS's managed groups with the body size rule only counting), the API function's reserved concurrency, and
what `flowers keys` reads from the stack's outputs."""
from __future__ import annotations

import json

from test_infra import (  # noqa: F401  (fixtures; first: it puts infra/ on the path)
    SECOND_STACK,
    SECOND_STACK_CONTEXT,
    STACK,
    cdk_out,
    functions,
    one,
    raw,
    resources,
    second_raw,
)

from chalicelib.api.client_keys import KeyPolicy, limits  # noqa: E402
from flowers_infra.config import FlowersConfig  # noqa: E402

DEFAULTS = FlowersConfig()


def _acl(template: dict) -> tuple[str, dict]:
    return one(template, "AWS::WAFv2::WebACL", "AppFirewallWebAcl")


def _rules(template: dict) -> dict[str, dict]:
    return {rule["Name"]: rule for rule in _acl(template)[1]["Properties"]["Rules"]}


def test_the_web_acl_is_regional_and_associated_with_the_api_stage(raw):  # noqa: F811
    acl_id, acl = _acl(raw)
    assert acl["Properties"]["Scope"] == "REGIONAL" and acl["Properties"]["DefaultAction"] == {"Allow": {}}
    (association,) = resources(raw, "AWS::WAFv2::WebACLAssociation").values()
    props = association["Properties"]
    assert props["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    # arn:PARTITION:apigateway:REGION::/restapis/API/stages/STAGE, with SAM's reference to the stage it generates
    # (which also makes CloudFormation create the stage before the association).
    parts = props["ResourceArn"]["Fn::Join"][1]
    assert parts == ["arn:", {"Ref": "AWS::Partition"}, ":apigateway:", {"Ref": "AWS::Region"}, "::/restapis/",
                     {"Ref": "RestAPI"}, "/stages/", {"Ref": "RestAPI.Stage"}]
    assert raw["Resources"]["RestAPI"]["Properties"]["StageName"] == "api"


def test_the_rate_rule_blocks_one_ip_past_the_configured_rate_with_429(raw, second_raw):  # noqa: F811
    for template, expected in ((raw, DEFAULTS.waf_rate_per_5min), (second_raw, int(SECOND_STACK_CONTEXT["waf_rate_per_5min"]))):
        rule = _rules(template)["RatePerIp"]
        assert rule["Statement"]["RateBasedStatement"] == {"AggregateKeyType": "IP", "EvaluationWindowSec": 300,
                                                          "Limit": expected}
        response = rule["Action"]["Block"]["CustomResponse"]
        assert response["ResponseCode"] == 429 and {"Name": "Retry-After", "Value": "60"} in response["ResponseHeaders"]
        body = _acl(template)[1]["Properties"]["CustomResponseBodies"][response["CustomResponseBodyKey"]]
        assert body["ContentType"] == "APPLICATION_JSON"
        assert json.loads(body["Content"])["error"]["code"] == "rate_limited"  # the API's own error shape
    assert DEFAULTS.waf_rate_per_5min != int(SECOND_STACK_CONTEXT["waf_rate_per_5min"])  # so the second stack shows it moves


def test_aws_managed_groups_for_an_image_api_and_the_body_size_rule_only_counts(raw):  # noqa: F811
    rules = _rules(raw)
    managed = {name: rule["Statement"]["ManagedRuleGroupStatement"] for name, rule in rules.items()
               if "ManagedRuleGroupStatement" in rule["Statement"]}
    assert set(managed) == {"AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesKnownBadInputsRuleSet",
                            "AWSManagedRulesCommonRuleSet"}
    for name, statement in managed.items():
        assert statement["VendorName"] == "AWS" and statement["Name"] == name
        assert rules[name]["OverrideAction"] == {"None": {}}  # the group's own actions apply (not all turned to count)
        assert "ExcludedRules" not in statement
    # Photos are bigger than SizeRestrictions_BODY's 8 KB: that rule counts, every other rule of the group blocks.
    overrides = managed["AWSManagedRulesCommonRuleSet"]["RuleActionOverrides"]
    assert overrides == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    assert "RuleActionOverrides" not in managed["AWSManagedRulesKnownBadInputsRuleSet"]  # Log4JRCE and the rest block
    # Every rule evaluated once, reputation first, then the rate
    assert sorted(rule["Priority"] for rule in rules.values()) == list(range(len(rules)))
    assert rules["AWSManagedRulesAmazonIpReputationList"]["Priority"] < rules["RatePerIp"]["Priority"]


def test_every_rule_and_the_acl_have_metrics_and_sampled_requests_and_blocks_are_logged_without_keys(raw):  # noqa: F811
    acl_id, acl = _acl(raw)
    visibility = [acl["Properties"]["VisibilityConfig"]] + [r["VisibilityConfig"] for r in acl["Properties"]["Rules"]]
    assert all(v["CloudWatchMetricsEnabled"] and v["SampledRequestsEnabled"] for v in visibility)
    assert len({v["MetricName"] for v in visibility}) == len(visibility)
    (logging,) = resources(raw, "AWS::WAFv2::LoggingConfiguration").values()
    assert logging["Properties"]["ResourceArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    group_id, group = one(raw, "AWS::Logs::LogGroup", "AppFirewallBlockedRequests")
    assert group["Properties"]["LogGroupName"] == f"aws-waf-logs-{STACK}" and group["Properties"]["RetentionInDays"] > 0
    (destination,) = logging["Properties"]["LogDestinationConfigs"]
    assert {"Ref": group_id} == destination["Fn::Join"][1][-1] and destination["Fn::Join"][1][-2] == ":log-group:"
    redacted = {field["SingleHeader"]["Name"] for field in logging["Properties"]["RedactedFields"]}
    assert redacted == {"x-api-key", "authorization"}
    assert logging["Properties"]["LoggingFilter"]["DefaultBehavior"] == "DROP"


def test_the_api_function_has_reserved_concurrency_and_the_pipelines_do_not(raw, second_raw):  # noqa: F811
    found = functions(raw)
    assert found["APIHandler"]["Properties"]["ReservedConcurrentExecutions"] == DEFAULTS.api_reserved_concurrency > 0
    for name in ("OnUpload", "Tick", "OnSagemakerJob"):
        assert "ReservedConcurrentExecutions" not in found[name]["Properties"], name
        skipped = {s["id"]: s["comment"] for s in found[name]["Metadata"]["checkov"]["skip"]}
        assert "reserved concurrency keeps the rest of the account's pool for them" in skipped["CKV_AWS_115"]
    api_skips = {s["id"] for s in found["APIHandler"]["Metadata"]["checkov"]["skip"]}
    assert "CKV_AWS_115" not in api_skips  # checkov checks it, and it passes
    # api_reserved_concurrency=0 (an account too small to reserve any): none, and the skip says why
    second = functions(second_raw)["APIHandler"]
    assert "ReservedConcurrentExecutions" not in second["Properties"]
    assert "api_reserved_concurrency=0" in {s["id"]: s["comment"] for s in second["Metadata"]["checkov"]["skip"]}["CKV_AWS_115"]


def test_flowers_keys_reads_the_api_and_the_client_key_limits_from_the_outputs(raw, second_raw):  # noqa: F811
    assert raw["Outputs"]["ApiId"]["Value"] == {"Ref": "RestAPI"}
    policy = KeyPolicy.from_json(raw["Outputs"]["ClientKeyLimits"]["Value"])
    assert policy == DEFAULTS.client_key_policy
    assert (policy.max_rate, policy.max_burst) == (DEFAULTS.api_rate_limit, DEFAULTS.api_burst_limit)
    # the stage's throttle is what the ceilings say
    (settings,) = raw["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (policy.max_rate, policy.max_burst)
    assert limits(policy) == DEFAULTS.client_key_limits
    # each stack's key names start with its own name: `<stack>-key-<NAME>` and `<stack>-page` cannot meet another's
    assert SECOND_STACK != STACK and KeyPolicy.from_json(second_raw["Outputs"]["ClientKeyLimits"]["Value"]) == policy
