"""The phone apps' guest role (issue 28, items 1 and 6), evaluated: the synthesized template's policies through the IAM
policy evaluator (tests/iam_policy.py) over every route's execute-api ARN and over S3 on both buckets. Only the apps'
routes are allowed; no operator route, no key route, no bucket. And only this pool's guest identities may take it."""
from __future__ import annotations

import pytest

from test_infra import cdk_out, one, raw, resources  # noqa: F401  (fixtures; first: it puts infra/ on the path)

from iam_policy import Request, Template, evaluate  # noqa: E402

ACCOUNT, REGION, STAGE = "123456789012", "eu-west-1", "api"
VERSION = "0123456789abcdef"
APP_ROUTES = {("/app/predict", "post"), ("/app/models/current", "get")}
COGNITO = "cognito-identity.amazonaws.com"


@pytest.fixture(scope="module")
def world(raw):  # noqa: F811
    template = Template(raw, account=ACCOUNT, region=REGION)
    _, attachment = one(raw, "AWS::Cognito::IdentityPoolRoleAttachment", "AppIdentityRoles")
    role = attachment["Properties"]["Roles"]["unauthenticated"]["Fn::GetAtt"][0]
    return template, role


def _routes(raw) -> set[tuple[str, str]]:  # noqa: F811
    paths = raw["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    return {(path, method) for path, methods in paths.items() for method in methods}  # OPTIONS too


def _invoke_arn(api_id: str, path: str, method: str, stage: str = STAGE) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{stage}/{method.upper()}{path.replace('{version}', VERSION)}"


def test_the_guest_role_may_invoke_the_app_routes_and_no_other_route(raw, world):  # noqa: F811
    template, role = world
    statements = template.role_statements(role)
    api_id = template.resolve({"Ref": "RestAPI"})
    routes = _routes(raw)
    assert APP_ROUTES <= routes and len(routes) > 15  # the template's every route, operator and key routes included
    allowed = {route for route in routes
               if evaluate(statements, Request("execute-api:Invoke", _invoke_arn(api_id, *route))).allowed}
    assert allowed == APP_ROUTES
    # Nor the same routes by another method, in another stage, or of another API.
    assert not evaluate(statements, Request("execute-api:Invoke", _invoke_arn(api_id, "/app/predict", "get"))).allowed
    assert not evaluate(statements, Request("execute-api:Invoke", _invoke_arn(api_id, "/app/predict", "post", "dev"))).allowed
    assert not evaluate(statements, Request("execute-api:Invoke", _invoke_arn("otherapi", "/app/predict", "post"))).allowed
    # The evaluator can say yes: the same ARN for the app route is allowed, and by the one statement.
    decision = evaluate(statements, Request("execute-api:Invoke", _invoke_arn(api_id, "/app/predict", "post")))
    assert decision.allowed and [s.sid for s in decision.allowed_by] == ["AppRoutesOnly"]


S3_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
              "s3:ListBucketVersions", "s3:GetBucketPolicy", "s3:PutObjectRetention", "s3:BypassGovernanceRetention")
KEYS = ("datasets/flowers/roses/r0.jpg", "classify/x.jpg", "predictions/b.jsonl", "models/0123456789abcdef/model.tflite",
        "manifests/0123456789abcdef.json", "training/job/output/output.tar.gz", "features/x")


def test_the_guest_role_reaches_neither_bucket(raw, world):  # noqa: F811
    template, role = world
    statements = template.role_statements(role) + template.resource_denies()
    buckets = [template.arn(lid) for lid, bucket in resources(raw, "AWS::S3::Bucket").items()
               if "Dataset" in lid or "Artifact" in lid]
    assert len(buckets) == 2, buckets
    for bucket in buckets:
        for action in S3_ACTIONS:
            for resource in (bucket, *(f"{bucket}/{key}" for key in KEYS)):
                decision = evaluate(statements, Request(action, resource))
                assert not decision.allowed, (action, resource, decision.explain())
    # and nothing else of AWS's: the one permission is execute-api:Invoke
    for action, resource in (("sagemaker:InvokeEndpoint", "*"), ("dynamodb:GetItem", "*"), ("events:PutEvents", "*"),
                             ("cognito-identity:GetCredentialsForIdentity", "*"), ("execute-api:ManageConnections", "*")):
        assert not evaluate(statements, Request(action, resource)).allowed, action


def test_only_this_pools_guest_identities_may_take_the_role(raw, world):  # noqa: F811
    from iam_policy import parse_statement

    template, role = world
    pool = template.resolve({"Ref": one(raw, "AWS::Cognito::IdentityPool", "AppIdentityIdentityPool")[0]})
    trust = [parse_statement(template.resolve(s), "trust") for s in
             raw["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]]
    cognito = f"Federated:{COGNITO}"

    def may(aud: str, amr: tuple[str, ...], principal: str = cognito) -> bool:
        context = {f"{COGNITO}:aud": aud, f"{COGNITO}:amr": amr}
        return evaluate(trust, Request("sts:AssumeRoleWithWebIdentity", "*", context), principal).allowed

    assert may(pool, ("unauthenticated",))
    assert not may("eu-west-1:another-pool", ("unauthenticated",))  # another pool's identities
    assert not may(pool, ("authenticated", "accounts.google.com"))  # a signed-in identity: no authenticated role yet
    assert not may(pool, ("unauthenticated",), "Federated:accounts.google.com")  # a web identity straight from Google
    assert not evaluate(trust, Request("sts:AssumeRole", "*", {f"{COGNITO}:aud": pool, f"{COGNITO}:amr": ("unauthenticated",)}),
                        cognito).allowed
