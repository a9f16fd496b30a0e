"""Short-lived credentials for phone apps: an Amazon Cognito identity pool of unauthenticated (guest) identities.

An app asks the pool for an identity (GetId) and its credentials (GetCredentialsForIdentity: an hour's STS
credentials of the guest role below), then signs its requests with SigV4 (service execute-api). Nothing long-lived
is built into the app: the pool id is no secret (it grants only what the guest role may do), credentials expire
within the hour, and turning guest access off (AllowUnauthenticatedIdentities) or narrowing the role takes effect
for every app at once, without a release.

The guest role may call exactly the APP routes of chalicelib/api/access.py (POST /app/predict, GET
/app/models/current: the served model's metadata and its presigned download links) and nothing else: no other
route, no S3 (the model's download link is presigned by the API function's role), no AWS API.

Enhanced (simplified) flow only: with the classic (basic) flow off, an app cannot call AssumeRoleWithWebIdentity
itself, and Cognito applies its scope-down policy to guest sessions on top of the role's. Attestation (Play
Integrity, App Attest) can later sit in front of GetId without changing the apps' signing.
"""
from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from constructs import Construct

from chalicelib.api import access
from chalicelib.contract.vocabulary import Access
from flowers_infra.checks import skip_checkov

COGNITO = "cognito-identity.amazonaws.com"


def invoke_arns(rest_api_id: str, stage: str, kinds: tuple[Access, ...] = (Access.APP,)) -> list[str]:
    """execute-api:Invoke resources, arn:aws:execute-api:REGION:ACCOUNT:API-ID/STAGE/METHOD/path, of these routes."""
    return [f"arn:{Aws.PARTITION}:execute-api:{Aws.REGION}:{Aws.ACCOUNT_ID}:{rest_api_id}/{stage}/{access.execute_api_path(route)}"
            for route in access.routes(*kinds)]


class AppIdentity(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, rest_api_id: str, stage: str) -> None:
        super().__init__(scope, construct_id)
        stack_name = Stack.of(self).stack_name
        self.pool = cognito.CfnIdentityPool(
            self, "IdentityPool", identity_pool_name=f"{stack_name}-apps",  # Cognito allows [\w\s+=,.@-]
            allow_unauthenticated_identities=True, allow_classic_flow=False)
        skip_checkov(self.pool, {"CKV_AWS_366": "guest identities are the point: phone apps get short-lived credentials "
                                               "whose role may only invoke POST /app/predict and GET /app/models/current"})
        self.guest_role = iam.Role(
            self, "GuestRole", description=f"{stack_name}: phone apps' guest identities (Cognito), predictions only",
            assumed_by=iam.FederatedPrincipal(COGNITO, {
                "StringEquals": {f"{COGNITO}:aud": self.pool.ref},
                "ForAnyValue:StringLike": {f"{COGNITO}:amr": "unauthenticated"},
            }, "sts:AssumeRoleWithWebIdentity"),
            inline_policies={"flowers": iam.PolicyDocument(statements=[iam.PolicyStatement(
                sid="AppRoutesOnly", actions=["execute-api:Invoke"], resources=invoke_arns(rest_api_id, stage))])})
        cognito.CfnIdentityPoolRoleAttachment(self, "Roles", identity_pool_id=self.pool.ref,
                                              roles={"unauthenticated": self.guest_role.role_arn})
