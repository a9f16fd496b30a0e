"""What a phone app does to use the deployed model, in Python: no API key and no long-lived secret inside.

1. Ask the stack's Cognito identity pool (output IdentityPoolId) for a guest identity (GetId, once: an app keeps the
   identity id) and its credentials (GetCredentialsForIdentity: an hour's STS credentials of the pool's guest role).
   Both calls are unsigned: the pool id is all an app carries, and it grants only what the guest role may do.
2. Sign each request with SigV4 (service execute-api, the API's region) with those credentials, session token
   included, and call the apps' routes: POST /app/predict, GET /app/models/current (metadata and presigned links).
3. When the credentials expire (or the gateway answers 403), get fresh ones for the same identity id.

On Android and iOS the AWS SDKs (or Amplify) do steps 1 and 3 (CognitoCachingCredentialsProvider,
AWSCognitoCredentialsProvider) and sign (README, "Use the model in an Android/iOS app").

    python -m flowers_cli.phone_client --url "$URL" --identity-pool-id "$POOL" rose.jpg
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Sequence

APP_PREDICT = "app/predict"
APP_CURRENT_MODEL = "app/models/current"
SERVICE = "execute-api"


@dataclass(frozen=True)
class GuestCredentials:
    identity_id: str
    access_key: str
    secret_key: str
    session_token: str


def region_of_pool(identity_pool_id: str) -> str:
    """An identity pool id is REGION:UUID."""
    region, _, rest = identity_pool_id.partition(":")
    if not region or not rest:
        raise ValueError(f"not an identity pool id (REGION:UUID): {identity_pool_id!r}")
    return region


def guest_credentials(identity_pool_id: str, identity_id: str = "", cognito: Any = None) -> GuestCredentials:
    """Steps 1 and 3: the pool's guest credentials for `identity_id` (a new identity when empty). Unsigned calls."""
    if cognito is None:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        cognito = boto3.client("cognito-identity", region_name=region_of_pool(identity_pool_id),
                               config=Config(signature_version=UNSIGNED))
    identity_id = identity_id or str(cognito.get_id(IdentityPoolId=identity_pool_id)["IdentityId"])
    found = cognito.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
    return GuestCredentials(identity_id, str(found["AccessKeyId"]), str(found["SecretKey"]), str(found["SessionToken"]))


def signed_headers(method: str, url: str, body: bytes, headers: dict[str, str], credentials: GuestCredentials,
                   region: str) -> dict[str, str]:
    """Step 2: the headers with SigV4's (Authorization, X-Amz-Date, X-Amz-Security-Token) added."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    signing = Credentials(credentials.access_key, credentials.secret_key, credentials.session_token)
    SigV4Auth(signing, SERVICE, region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


def call(method: str, url: str, credentials: GuestCredentials, region: str, body: bytes = b"",
         content_type: str = "") -> tuple[int, Any]:
    """One signed request: (HTTP status, JSON answer or None)."""
    headers = signed_headers(method, url, body, {"Content-Type": content_type} if content_type else {}, credentials, region)
    request = urllib.request.Request(url, data=body or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, None


def predict(api_url: str, image: bytes, identity_pool_id: str, content_type: str = "image/jpeg", top_k: int = 5,
            cognito: Any = None) -> tuple[int, Any]:
    """Everything an app does for one prediction: credentials from the pool, a signed POST /app/predict."""
    region = region_of_pool(identity_pool_id)
    credentials = guest_credentials(identity_pool_id, cognito=cognito)
    url = f"{api_url.rstrip('/')}/{APP_PREDICT}?top_k={top_k}"
    return call("POST", url, credentials, region, image, content_type)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowers_cli.phone_client",
                                     description="Predict as a phone app does: guest credentials from the stack's "
                                                 "Cognito identity pool, SigV4-signed POST /app/predict.")
    parser.add_argument("--url", required=True, help="the API (stack output ApiUrl)")
    parser.add_argument("--identity-pool-id", required=True, help="stack output IdentityPoolId (REGION:UUID)")
    parser.add_argument("--top-k", type=int, default=5, help="labels to return (default 5)")
    parser.add_argument("photo", help="a JPEG photo")
    args = parser.parse_args(argv)
    try:
        with open(args.photo, "rb") as handle:
            image = handle.read()
        status, answer = predict(args.url, image, args.identity_pool_id, top_k=args.top_k)
    except (OSError, ValueError) as exc:
        print(f"phone_client: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # botocore's: no network, no such pool, guest access off
        print(f"phone_client: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
