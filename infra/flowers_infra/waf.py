"""A WAF web ACL on the API's stage: per-caller rate limits and AWS's managed rules for an image API.

API keys and usage plans limit each key; they do not stop one IP address (with no key, a leaked key or many keys)
from flooding the stage's shared throttle, and AWS calls usage-plan limits best effort. The web ACL is the layer in
front of them, on every request, whatever key or signature it carries:

- AmazonIpReputationList: addresses Amazon's threat intelligence knows for bots and attacks, refused first.
- RatePerIp: one IP address may send config.waf_rate_per_5min requests in any 5 minutes; past that it gets 429 (the
  API's own error JSON) until its rate falls, and every other caller goes on.
- KnownBadInputs: request patterns of known exploits (Log4j, Java deserialisation, localhost Host headers, ...).
- CommonRuleSet (OWASP-style signatures), except its SizeRestrictions_BODY rule, which blocks bodies over 8 KB: every
  photo to POST /predict is larger, so that rule only counts. The API limits bodies itself: 413 above 4 MiB, and an
  image over 50 megapixels is refused from its header before decoding (chalicelib/api/predict_request.py).

Every rule and the ACL publish CloudWatch metrics (namespace AWS/WAFV2) and keep sampled requests; blocked requests
are logged to the log group aws-waf-logs-<stack> (WAF's required prefix), without the x-api-key and Authorization
headers.
"""
from __future__ import annotations

import json

from aws_cdk import Acknowledgment, ArnFormat, RemovalPolicy, Stack, Validations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as waf
from constructs import Construct

from flowers_infra.checks import skip_checkov
from flowers_infra.constants import LOG_KMS_REASON

# The managed groups, in the order they are evaluated (after IP reputation and the rate rule), and the rules of each
# that only count: SizeRestrictions_BODY because photos are bigger than its 8 KB.
MANAGED_GROUPS = {"AWSManagedRulesAmazonIpReputationList": (), "AWSManagedRulesKnownBadInputsRuleSet": (),
                  "AWSManagedRulesCommonRuleSet": ("SizeRestrictions_BODY",)}
RATE_RULE = "RatePerIp"
RATE_LIMITED_BODY = "rate_limited"
RETRY_AFTER_SECONDS = 60  # WAF re-evaluates the rate every few tens of seconds over a 5-minute window
REDACTED_HEADERS = ("x-api-key", "authorization")  # never in a log


def _visibility(stack_name: str, name: str) -> waf.CfnWebACL.VisibilityConfigProperty:
    return waf.CfnWebACL.VisibilityConfigProperty(cloud_watch_metrics_enabled=True, sampled_requests_enabled=True,
                                                  metric_name=f"{stack_name}-{name}")


def _managed(stack_name: str, priority: int, group: str, counted: tuple[str, ...]) -> waf.CfnWebACL.RuleProperty:
    return waf.CfnWebACL.RuleProperty(
        name=group, priority=priority, override_action=waf.CfnWebACL.OverrideActionProperty(none={}),
        statement=waf.CfnWebACL.StatementProperty(managed_rule_group_statement=waf.CfnWebACL.ManagedRuleGroupStatementProperty(
            vendor_name="AWS", name=group,
            rule_action_overrides=[waf.CfnWebACL.RuleActionOverrideProperty(
                name=rule, action_to_use=waf.CfnWebACL.RuleActionProperty(count={})) for rule in counted] or None)),
        visibility_config=_visibility(stack_name, group))


class ApiFirewall(Construct):
    """The web ACL, its association with the stage (by ARN), and its log of blocked requests."""

    def __init__(self, scope: Construct, construct_id: str, *, stack_name: str, stage_arn: str, rate_per_5min: int,
                 log_retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        groups = list(MANAGED_GROUPS.items())
        rate = waf.CfnWebACL.RuleProperty(
            name=RATE_RULE, priority=1,
            action=waf.CfnWebACL.RuleActionProperty(block=waf.CfnWebACL.BlockActionProperty(
                custom_response=waf.CfnWebACL.CustomResponseProperty(
                    response_code=429, custom_response_body_key=RATE_LIMITED_BODY,
                    response_headers=[waf.CfnWebACL.CustomHTTPHeaderProperty(
                        name="Retry-After", value=str(RETRY_AFTER_SECONDS))]))),
            statement=waf.CfnWebACL.StatementProperty(rate_based_statement=waf.CfnWebACL.RateBasedStatementProperty(
                limit=rate_per_5min, aggregate_key_type="IP", evaluation_window_sec=300)),
            visibility_config=_visibility(stack_name, RATE_RULE))
        rules = [_managed(stack_name, 0, *groups[0]), rate,
                 *(_managed(stack_name, priority, group, counted) for priority, (group, counted) in enumerate(groups[1:], 2))]
        self.web_acl = waf.CfnWebACL(
            self, "WebAcl", name=f"{stack_name}-api", scope="REGIONAL",
            description="flowers API - per-IP rate limit and AWS managed rules, see infra/waf.py",
            default_action=waf.CfnWebACL.DefaultActionProperty(allow={}), rules=rules,
            custom_response_bodies={RATE_LIMITED_BODY: waf.CfnWebACL.CustomResponseBodyProperty(
                content_type="APPLICATION_JSON", content=json.dumps({"error": {
                    "code": RATE_LIMITED_BODY, "message": f"more than {rate_per_5min} requests from your address in "
                                                          "5 minutes: slow down and retry later"}}))},
            visibility_config=_visibility(stack_name, "api"))
        self.association = waf.CfnWebACLAssociation(self, "StageAssociation", resource_arn=stage_arn,
                                                    web_acl_arn=self.web_acl.attr_arn)
        Validations.of(self.association).acknowledge(Acknowledgment(
            id="CloudFormation-Validate::F1020",
            reason="Ref RestAPI.Stage is SAM's name for the stage it generates; the transform resolves it"))

        self.log_group = logs.LogGroup(self, "BlockedRequests", log_group_name=f"aws-waf-logs-{stack_name}",
                                       retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        skip_checkov(self.log_group, {"CKV_AWS_158": LOG_KMS_REASON})
        # WAF takes the log group's ARN without the ":*" that LogGroup.log_group_arn ends with.
        destination = Stack.of(self).format_arn(service="logs", resource="log-group", resource_name=self.log_group.log_group_name,
                                                arn_format=ArnFormat.COLON_RESOURCE_NAME)
        self.logging = waf.CfnLoggingConfiguration(
            self, "Logging", resource_arn=self.web_acl.attr_arn, log_destination_configs=[destination],
            redacted_fields=[waf.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": name})
                             for name in REDACTED_HEADERS],
            # Blocked requests only: every photo counts under SizeRestrictions_BODY, which the metrics show already.
            logging_filter={"DefaultBehavior": "DROP", "Filters": [{
                "Behavior": "KEEP", "Requirement": "MEETS_ANY",
                "Conditions": [{"ActionCondition": {"Action": "BLOCK"}}]}]})
