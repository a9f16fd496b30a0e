"""The tests' IAM evaluator (tests/iam_policy.py) and call mapping (tests/iam_calls.py): AWS's rules on small policies."""
from __future__ import annotations

import datetime

import pytest

from iam_calls import UnmappedCall, Where, missing_key_needs, needs
from iam_policy import Request, Statement, Template, condition_holds, evaluate, parse_statement

WHERE = Where("123456789012", "us-east-1")
BUCKET = "arn:aws:s3:::data"


def allow(action, resource, condition=None, sid="") -> Statement:
    return parse_statement({"Effect": "Allow", "Action": action, "Resource": resource, "Sid": sid, **(
        {"Condition": condition} if condition else {})}, "role R")


def test_an_allow_with_wildcards_allows_and_nothing_else_does():
    policy = [allow("s3:Get*", f"{BUCKET}/datasets/*")]
    assert evaluate(policy, Request("s3:GetObject", f"{BUCKET}/datasets/a/b.jpg")).allowed
    assert evaluate(policy, Request("S3:getobject", f"{BUCKET}/datasets/x")).allowed  # actions: any case
    assert not evaluate(policy, Request("s3:GetObject", f"{BUCKET}/classify/x")).allowed
    assert not evaluate(policy, Request("s3:PutObject", f"{BUCKET}/datasets/x")).allowed
    assert not evaluate(policy, Request("s3:GetObject", f"{BUCKET.upper()}/datasets/x")).allowed  # resources: case counts
    assert evaluate([allow("s3:GetObject", f"{BUCKET}/d?/*")], Request("s3:GetObject", f"{BUCKET}/d1/x")).allowed


def test_an_explicit_deny_wins_and_says_which_statement():
    deny = parse_statement({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "events:PutEvents", "Resource": "*",
                            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": ["arn:aws:iam::1:role/ok"]}}}, "bus policy", )
    grant = allow("events:PutEvents", "arn:aws:events:*")
    request = Request("events:PutEvents", "arn:aws:events:us-east-1:1:event-bus/b", {"aws:PrincipalArn": "arn:aws:iam::1:role/other"})
    decision = evaluate([grant, deny], request)
    assert not decision.allowed and decision.denied_by == (deny,) and "explicitly denied by bus policy" in decision.explain()
    ok = Request(request.action, request.resource, {"aws:PrincipalArn": "arn:aws:iam::1:role/ok"})
    assert evaluate([grant, deny], ok).allowed and evaluate([grant, deny], ok).allowed_by == (grant,)


def test_a_resource_policy_statement_applies_to_its_principals_only():
    deny = parse_statement({"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::1:role/x"}, "Action": "s3:*", "Resource": "*"})
    assert evaluate([allow("s3:*", "*"), deny], Request("s3:GetObject", "arn:aws:s3:::b/k"), principal="arn:aws:iam::1:role/y").allowed
    assert not evaluate([allow("s3:*", "*"), deny], Request("s3:GetObject", "arn:aws:s3:::b/k"), principal="arn:aws:iam::1:role/x").allowed


def test_not_action_and_not_resource():
    everything_but = parse_statement({"Effect": "Allow", "NotAction": "s3:Delete*", "NotResource": f"{BUCKET}/models/*"})
    assert evaluate([everything_but], Request("s3:PutObject", f"{BUCKET}/x")).allowed
    assert not evaluate([everything_but], Request("s3:DeleteObject", f"{BUCKET}/x")).allowed
    assert not evaluate([everything_but], Request("s3:PutObject", f"{BUCKET}/models/x")).allowed


@pytest.mark.parametrize("operator, wanted, context, holds", [
    ("StringLike", ["datasets/*"], {"s3:prefix": "datasets/a"}, True),
    ("StringLike", ["datasets/*"], {"s3:prefix": "classify/a"}, False),
    ("StringLike", ["datasets/*"], {}, False),  # a key the request lacks: a positive operator fails
    ("StringLikeIfExists", ["datasets/*"], {}, True),
    ("StringNotEquals", ["flowers"], {}, True),  # ... and a negated one holds
    ("StringNotEquals", ["flowers", "other"], {"events:source": "other"}, False),
    ("StringEquals", ["flowers"], {"EVENTS:SOURCE": "flowers"}, True),  # keys: any case
    ("StringEquals", ["Flowers"], {"events:source": "flowers"}, False),
    ("StringEqualsIgnoreCase", ["Flowers"], {"events:source": "flowers"}, True),
    ("ArnEquals", ["arn:aws:iam::1:role/*"], {"aws:PrincipalArn": "arn:aws:iam::1:role/r"}, True),
    ("ArnNotLike", ["arn:aws:iam::1:role/*"], {"aws:PrincipalArn": "arn:aws:iam::2:role/r"}, True),
    ("Bool", ["false"], {"aws:SecureTransport": "true"}, False),
    ("Bool", ["TRUE"], {"aws:SecureTransport": "true"}, True),
    ("Null", ["true"], {}, True),
    ("Null", ["false"], {}, False),
    ("NumericLessThanEquals", ["3600"], {"sagemaker:MaxRuntimeInSeconds": "3600"}, True),
    ("NumericGreaterThan", ["3600"], {"sagemaker:MaxRuntimeInSeconds": "3600"}, False),
    ("DateGreaterThan", ["2026-01-01T00:00:00Z"], {"s3:object-lock-retain-until-date": "2027-01-01T00:00:00+00:00"}, True),
    ("ForAllValues:StringEquals", ["ml.g5.xlarge"], {"sagemaker:InstanceTypes": ("ml.g5.xlarge",)}, True),
    ("ForAllValues:StringEquals", ["ml.g5.xlarge"], {"sagemaker:InstanceTypes": ("ml.g5.xlarge", "ml.p4d.24xlarge")}, False),
    ("ForAllValues:StringEquals", ["ml.g5.xlarge"], {}, True),  # vacuously: why such grants pair with a Null check
    ("ForAnyValue:StringEquals", ["ml.g5.xlarge"], {"sagemaker:InstanceTypes": ("ml.m5.large", "ml.g5.xlarge")}, True),
    ("ForAnyValue:StringEquals", ["ml.g5.xlarge"], {}, False),
])
def test_condition_operators(operator, wanted, context, holds):
    key = next(iter(context), "k")
    assert condition_holds(operator, key, tuple(wanted), context) is holds


def test_an_operator_not_modelled_fails_loudly():
    with pytest.raises(ValueError, match="not modelled"):
        condition_holds("IpAddress", "aws:SourceIp", ("10.0.0.0/8",), {"aws:SourceIp": "10.1.1.1"})


def test_without_action_removes_one_grant():
    statement = allow(["s3:GetObject", "s3:PutObject"], "*", sid="S")
    assert statement.without_action("s3:GetObject").actions == ("s3:PutObject",)
    assert allow("s3:GetObject", "*").without_action("s3:GetObject") is None


# the template -----------------------------------------------------------------------------------------------------
TEMPLATE = {"Resources": {
    "Data": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Join": ["", [
        "st-datasets-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]}}},
    "Artifacts": {"Type": "AWS::S3::Bucket", "Properties": {}},
    "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "st-events"}},
    "Role": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {"Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Join": ["", [
            "arn:", {"Ref": "AWS::Partition"}, ":s3:::st-datasets-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}, "/d/*"]]}},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["Artifacts", "Arn"]}, "/m/*"]]}},
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Fn::GetAtt": ["Bus", "Arn"]}},
        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:x"}},
    ]}}]}},
    "Extra": {"Type": "AWS::IAM::Policy", "Properties": {"Roles": [{"Ref": "Role"}], "PolicyDocument": {"Statement": [
        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": {"Fn::Sub": "${Artifacts.Arn}/m/locked"}}]}}},
    "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Environment": {
        "Variables": {"DATASET_BUCKET": {"Ref": "Data"}, "ARTIFACT_BUCKET": {"Ref": "Artifacts"}, "MODE": "aws"}}}},
}}


def test_the_template_resolves_to_the_tests_names():
    template = Template(TEMPLATE, account="123456789012", region="us-east-1", stack="st")
    for variable, value in template.environment("Fn").items():
        template.bind(value, {"DATASET_BUCKET": "data", "ARTIFACT_BUCKET": "artifacts"}.get(variable, "x"))
    assert template.function_roles() == {"Fn": "Role"}
    statements = template.role_statements("Role")
    assert [s.resources for s in statements] == [
        ("arn:aws:s3:::data/d/*",), ("arn:aws:s3:::artifacts/m/*",), ("arn:aws:events:us-east-1:123456789012:event-bus/st-events",),
        ("arn:aws:logs:us-east-1:123456789012:log-group:x",), ("arn:aws:s3:::artifacts/m/locked",)]
    assert evaluate(statements, Request("s3:PutObject", "arn:aws:s3:::artifacts/m/a")).allowed
    assert not evaluate(statements, Request("s3:PutObject", "arn:aws:s3:::artifacts/m/locked")).allowed
    with pytest.raises(KeyError, match="not modelled"):
        template.resolve({"Fn::GetAtt": ["Data", "DomainName"]})


# the calls ------------------------------------------------------------------------------------------------------
def test_s3_calls():
    assert needs("s3", "HeadObject", {"Bucket": "data", "Key": "a/b"}, WHERE) == [Request("s3:GetObject", "arn:aws:s3:::data/a/b")]
    assert needs("s3", "GetObject", {"Bucket": "data", "Key": "k", "VersionId": "v"}, WHERE)[0].action == "s3:GetObjectVersion"
    (listing,) = needs("s3", "ListObjectsV2", {"Bucket": "data", "Prefix": "datasets/", "MaxKeys": 1}, WHERE)
    assert listing == Request("s3:ListBucket", "arn:aws:s3:::data", {"s3:prefix": "datasets/", "s3:max-keys": "1"})
    assert needs("s3", "ListObjectVersions", {"Bucket": "data"}, WHERE) == [Request("s3:ListBucketVersions", "arn:aws:s3:::data", {})]
    until = datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc)
    put = needs("s3", "PutObject", {"Bucket": "b", "Key": "k", "ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": until}, WHERE)
    assert [r.action for r in put] == ["s3:PutObject", "s3:PutObjectRetention"]
    assert put[1].context == {"s3:object-lock-mode": "GOVERNANCE", "s3:object-lock-retain-until-date": until.isoformat()}
    assert missing_key_needs(WHERE, {"Bucket": "data", "Key": "k"}) == Request("s3:ListBucket", "arn:aws:s3:::data")


def test_s3_writes_once_locks_and_copies():
    """A conditional PutObject carries s3:if-none-match, so a bucket policy that requires it (the artifact bucket's
    manifests/ Deny: Null s3:if-none-match) refuses the unconditional write only; PutObjectRetention is its own action;
    CopyObject writes its destination and reads its source's version."""
    deny = parse_statement({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:PutObject",
                            "Resource": "arn:aws:s3:::b/manifests/*", "Condition": {"Null": {"s3:if-none-match": "true"}}},
                           "bucket policy")
    grant = allow("s3:PutObject", "arn:aws:s3:::b/manifests/*")
    (once,) = needs("s3", "PutObject", {"Bucket": "b", "Key": "manifests/v.json", "IfNoneMatch": "*"}, WHERE)
    (plain,) = needs("s3", "PutObject", {"Bucket": "b", "Key": "manifests/v.json"}, WHERE)
    assert once.context == {"s3:if-none-match": "*"} and plain.context == {}
    assert evaluate([grant, deny], once).allowed
    assert evaluate([grant, deny], plain).denied_by == (deny,)
    until = datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc)
    (lock,) = needs("s3", "PutObjectRetention", {"Bucket": "b", "Key": "models/v/m.tflite",
                                                  "Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": until}}, WHERE)
    assert lock == Request("s3:PutObjectRetention", "arn:aws:s3:::b/models/v/m.tflite",
                           {"s3:object-lock-mode": "GOVERNANCE", "s3:object-lock-retain-until-date": until.isoformat()})
    bypass = needs("s3", "PutObjectRetention", {"Bucket": "b", "Key": "k", "Retention": {}, "BypassGovernanceRetention": True}, WHERE)
    assert [r.action for r in bypass] == ["s3:PutObjectRetention", "s3:BypassGovernanceRetention"]
    for source in ({"Bucket": "d", "Key": "x/a.jpg", "VersionId": "v1"}, "d/x/a.jpg?versionId=v1"):
        copy = needs("s3", "CopyObject", {"Bucket": "d", "Key": "x/a.jpg", "CopySource": source}, WHERE)
        assert [(r.action, r.resource) for r in copy] == [("s3:PutObject", "arn:aws:s3:::d/x/a.jpg"),
                                                          ("s3:GetObjectVersion", "arn:aws:s3:::d/x/a.jpg")]


def test_a_transaction_needs_each_items_action():
    items = [{"Put": {"TableName": "t"}}, {"Update": {"TableName": "t"}}, {"ConditionCheck": {"TableName": "u"}}]
    assert [(r.action, r.resource) for r in needs("dynamodb", "TransactWriteItems", {"TransactItems": items}, WHERE)] == [
        ("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:123456789012:table/t"),
        ("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:123456789012:table/t"),
        ("dynamodb:ConditionCheckItem", "arn:aws:dynamodb:us-east-1:123456789012:table/u")]


def test_a_training_job_passes_its_role_and_tags_itself():
    job, passed, tags = needs("sagemaker", "CreateTrainingJob", {
        "TrainingJobName": "Flowers-1", "RoleArn": "arn:aws:iam::1:role/sm", "ResourceConfig": {"InstanceType": "ml.g5.xlarge"},
        "EnableNetworkIsolation": True, "StoppingCondition": {"MaxRuntimeInSeconds": 60}, "Tags": [{"Key": "k", "Value": "v"}]}, WHERE)
    assert job.resource == "arn:aws:sagemaker:us-east-1:123456789012:training-job/flowers-1"  # SageMaker ARNs: lower case
    assert job.context == {"sagemaker:InstanceTypes": ("ml.g5.xlarge",), "sagemaker:NetworkIsolation": "true",
                           "sagemaker:MaxRuntimeInSeconds": "60"}
    assert passed == Request("iam:PassRole", "arn:aws:iam::1:role/sm", {"iam:PassedToService": "sagemaker.amazonaws.com"})
    assert tags.action == "sagemaker:AddTags" and tags.context == {"aws:TagKeys": ("k",)}


def test_events_are_checked_entry_by_entry():
    found = needs("events", "PutEvents", {"Entries": [{"Source": "flowers", "DetailType": "Run Started", "EventBusName": "b"},
                                                      {"Source": "other", "DetailType": "x"}]}, WHERE)
    assert [(r.resource, r.context["events:source"]) for r in found] == [
        ("arn:aws:events:us-east-1:123456789012:event-bus/b", "flowers"),
        ("arn:aws:events:us-east-1:123456789012:event-bus/default", "other")]


def test_an_unmapped_call_fails_loudly():
    with pytest.raises(UnmappedCall, match="s3 DeleteObjects is not in tests/iam_calls.py CALLS"):
        needs("s3", "DeleteObjects", {}, WHERE)
