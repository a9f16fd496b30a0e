"""The CLI against the deployed stack: the API key on every call, operator commands SigV4-signed
with the user's AWS credentials, `--stack NAME` read from CloudFormation and API Gateway (moto). And a phone
app's client (flowers_cli/phone_client.py): guest credentials from a Cognito identity pool (moto), SigV4.

The "cloud" is a real HTTP server standing in for API Gateway in front of the Chalice app (local
mode, in this process): it refuses a key route without the right `x-api-key` (403, as API
Gateway does) and a signed route (chalicelib/api/access.py: operators' and apps') without a valid
SigV4 signature (recomputed here with the secret of the access key that signed, and, for temporary
credentials, the session token it was issued with), and forwards the rest to the app's own routes under /api/.
"""
from __future__ import annotations

import hmac
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import pytest

import app as chalice_app
from flowers_cli import main as cli
from chalicelib.api import access
from pipeline_fixtures import iam_identity, invoke_api, principal, tiny_model  # noqa: F401  (a fixture)

KEY = "k3y-0123456789abcdefghijklmnop"
OPERATOR_ARN = principal("cli-operator")
ACCESS_KEY, SECRET = "AKIDEXAMPLEFLOWERS", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"
PUBLIC = {"/", "/openapi.json"}
_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/execute-api/aws4_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def signature_problem(method: str, url: str, headers: dict[str, str], body: bytes, secrets: dict[str, str] | None = None) -> str:
    """'' when the request carries a valid SigV4 signature for execute-api made with a known secret, else why not."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    match = _AUTH.match(headers.get("authorization", ""))
    if not match:
        return "Missing Authentication Token"
    access_key, _, region, signed, signature = match.groups()
    secret = (secrets or {ACCESS_KEY: SECRET}).get(access_key)
    if secret is None:
        return "unknown access key"
    names = signed.split(";")
    request = AWSRequest(method=method, url=url, data=body, headers={k: v for k, v in headers.items() if k.lower() in names})
    request.context["timestamp"] = headers.get("x-amz-date", "")
    signer = SigV4Auth(Credentials(access_key, secret, headers.get("x-amz-security-token")), "execute-api", region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return "" if hmac.compare_digest(expected, signature) else "The request signature we calculated does not match"


class Gateway:
    """API Gateway's checks in front of the Chalice app; `seen` keeps each request's path and headers."""

    def __init__(self) -> None:
        from chalice.test import Client

        import app as chalice_app

        self.client = Client(chalice_app.app)
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.secrets = {ACCESS_KEY: SECRET}  # the IAM users the stand-in knows
        self.principals = {ACCESS_KEY: OPERATOR_ARN}  # and who they are
        # Whether an x-api-key opens a key route: the one key here; tests/integration/test_cli_keys.py asks moto's API
        # Gateway instead, as API Gateway would (an enabled key in a usage plan on the stage).
        self.key_ok: Callable[[str], bool] = lambda value: value == KEY
        self.session_tokens: dict[str, str] = {}  # temporary credentials: access key -> the token issued with it
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}  # HTTP header names are case-insensitive
                gateway.seen.append((method, self.path, headers))
                if not self.path.startswith("/api/"):
                    return self._send(404, {"message": "Not Found"})
                route = self.path[len("/api"):]
                path = route.split("?", 1)[0]
                forwarded = {k: v for k, v in headers.items() if k in ("content-type", "user-agent")}
                if access.access_of(method, route) in access.SIGNED:
                    problem = signature_problem(method, f"http://{headers['host']}{self.path}", headers, body,
                                                gateway.secrets)
                    access_key = _AUTH.match(headers["authorization"]).group(1) if not problem else ""  # type: ignore[union-attr]
                    if not problem and gateway.session_tokens.get(access_key, "") != headers.get("x-amz-security-token", ""):
                        problem = "The security token included in the request is invalid"
                    if problem:
                        return self._send(403, {"message": problem})
                    # As API Gateway's IAM authorizer: the app's request context names the principal who signed.
                    answer = invoke_api(chalice_app.app, method, route, forwarded, body, iam_identity(gateway.principals.get(access_key) or principal(access_key)))
                    raw = answer.get("body") or b""
                    return self._reply(answer["statusCode"], answer.get("headers") or {}, raw.encode() if isinstance(raw, str) else raw)
                if path not in PUBLIC and not gateway.key_ok(headers.get("x-api-key", "")):
                    return self._send(403, {"message": "Forbidden"})
                response = gateway.client.http.request(method, route, headers=forwarded, body=body)
                self._reply(response.status_code, response.headers, response.body or b"")

            def _reply(self, status: int, headers: dict[str, str], raw: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def _send(self, status: int, document: dict[str, str]) -> None:
                raw = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway(monkeypatch, tmp_path) -> Iterator[Gateway]:
    from chalicelib import services

    from chalicelib.settings import SCHEMA

    # Only what this test sets: another test in this process (the CDK synthesis) may have left the app's variables.
    for name in ("FLOWERS_URL", "FLOWERS_API_KEY", "FLOWERS_STACK", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 *(variable.name for variable in SCHEMA.values())):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOWERS_MODE", "local")
    monkeypatch.setenv("FLOWERS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    services.reset()
    world = Gateway()
    yield world
    world.close()
    services.reset()


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_without_the_key_the_gateway_refuses_and_the_cli_says_so(gateway, capsys):
    code, _, err = run(capsys, "models", "--url", gateway.url)
    assert code == 1 and "HTTP 403: Forbidden (no or a wrong API key: --api-key, FLOWERS_API_KEY or --stack NAME)" in err


def test_the_key_from_the_option_or_the_environment_reaches_every_route(gateway, capsys, monkeypatch):
    code, out, _ = run(capsys, "models", "--json", "--url", gateway.url, "--api-key", KEY)
    assert code == 0 and json.loads(out) == []
    monkeypatch.setenv("FLOWERS_API_KEY", KEY)
    code, out, _ = run(capsys, "models", "--json", "--url", gateway.url)
    assert code == 0 and json.loads(out) == []
    assert [h.get("x-api-key") for _, _, h in gateway.seen] == [KEY, KEY]
    assert not any("authorization" in h for _, _, h in gateway.seen)  # the key routes' reads are not signed


def test_operator_data_is_signed_and_the_key_alone_gets_the_summary(gateway, capsys):
    """Issue 28, item 4: GET /status (file paths, job names, who did what) is an operator route: `flowers status`
    signs it; with the key alone the gateway refuses it and a model's photos, and /status/summary answers."""
    import urllib.error
    import urllib.request

    code, out, _ = run(capsys, "status", "--json", "--url", gateway.url, "--api-key", KEY)
    assert code == 0 and json.loads(out)["pending_uploads"] == 0 and "operator_actions" in json.loads(out)
    ((method, path, headers),) = gateway.seen
    assert (method, path) == ("GET", "/api/status") and f"Credential={ACCESS_KEY}/" in headers["authorization"]
    for route in ("status", "models/detail", "models/0123456789abcdef/photos", "status/label-issues/thumbnail?file=a.jpg"):
        request = urllib.request.Request(gateway.url + route, headers={"x-api-key": KEY})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403 and b"Missing Authentication Token" in refused.value.read(), route
    with urllib.request.urlopen(urllib.request.Request(gateway.url + "status/summary", headers={"x-api-key": KEY}), timeout=10) as answer:
        summary = json.loads(answer.read())
    assert summary["pending_uploads"] == 0 and "operator_actions" not in summary and "uri" not in summary["dataset"]


def test_flowers_models_reads_the_key_route_and_with_detail_the_signed_one(gateway, capsys):
    """GET /models answers a key (scripts); `flowers models --detail` signs GET /models/detail (operators)."""
    code, out, _ = run(capsys, "models", "--json", "--url", gateway.url, "--api-key", KEY)
    assert code == 0 and json.loads(out) == []
    code, out, _ = run(capsys, "models", "--detail", "--json", "--url", gateway.url, "--api-key", KEY)
    assert code == 0 and json.loads(out) == []
    (_, key_path, key_headers), (_, detail_path, detail_headers) = gateway.seen
    assert key_path == "/api/models" and "authorization" not in key_headers
    assert detail_path == "/api/models/detail" and f"Credential={ACCESS_KEY}/" in detail_headers["authorization"]


def test_operator_commands_are_sigv4_signed_and_reach_the_app(gateway, capsys):
    # The gateway recomputes the signature: these reach the app, which answers as it does for an empty home.
    code, _, err = run(capsys, "approve", "0123456789abcdef", "--reason", "looks fine", "--url", gateway.url, "--api-key", KEY)
    assert code == 1 and "not_found" in err
    code, _, err = run(capsys, "rollback", "--url", gateway.url, "--api-key", KEY)
    assert code == 1 and "conflict" in err and "no earlier approved model" in err
    code, _, err = run(capsys, "retrain", "--url", gateway.url, "--api-key", KEY)
    assert code == 1 and "data set is empty" in err
    signed = [(path, h["authorization"]) for method, path, h in gateway.seen]
    assert [p for p, _ in signed] == ["/api/models/0123456789abcdef/approve", "/api/models/rollback", "/api/runs"]
    assert all(f"Credential={ACCESS_KEY}/" in a and f"/{REGION}/execute-api/aws4_request" in a for _, a in signed)


def test_a_signature_of_another_account_is_refused_and_the_cli_says_what_is_needed(gateway, capsys):
    gateway.secrets = {"AKIDSOMEONEELSE": "x"}  # the user's access key is unknown to this API
    code, _, err = run(capsys, "approve", "0123456789abcdef", "--url", gateway.url, "--api-key", KEY)
    assert code == 1 and "HTTP 403: unknown access key (operator commands need AWS credentials allowed execute-api:Invoke" in err


def test_a_tampered_signature_is_refused_by_the_stand_in(gateway):
    """The stand-in's check can fail: a body changed after signing does not pass."""
    from flowers_cli.client import SigV4Signer

    url = gateway.url + "models/rollback"
    headers = {k.lower(): v for k, v in SigV4Signer(REGION).headers("POST", url, b"{}", {"Content-Type": "application/json"}).items()}
    assert signature_problem("POST", url, headers, b"{}") == ""
    assert "does not match" in signature_problem("POST", url, headers, b'{"reason": "x"}')
    assert signature_problem("POST", url, {}, b"{}") == "Missing Authentication Token"


def test_operator_commands_without_aws_credentials_say_what_to_do(gateway, capsys, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, _, err = run(capsys, "rollback", "--url", gateway.url, "--api-key", KEY)
    assert code == 2 and "no AWS credentials" in err and "aws configure" in err
    assert gateway.seen == []  # nothing unsigned was sent


def test_stack_outputs_give_the_url_and_the_key(gateway, capsys, monkeypatch):
    import boto3
    from moto import mock_aws

    with mock_aws():  # moto swaps in its own fake credentials: the user's
        gateway.secrets = {os.environ["AWS_ACCESS_KEY_ID"]: os.environ["AWS_SECRET_ACCESS_KEY"]}
        apigateway = boto3.client("apigateway", region_name=REGION)
        key_id = apigateway.create_api_key(name="flowers-page", enabled=True, value=KEY)["id"]
        template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                    "Outputs": {"ApiUrl": {"Value": gateway.url}, "ApiKeyId": {"Value": key_id}}}
        boto3.client("cloudformation", region_name=REGION).create_stack(StackName="flowers-dev", TemplateBody=json.dumps(template))
        code, out, _ = run(capsys, "status", "--json", "--stack", "flowers-dev")
        assert code == 0 and "pending_uploads" in json.loads(out)  # signed with the user's credentials
        code, _, err = run(capsys, "rollback", "--stack", "flowers-dev")
        assert code == 1 and "no earlier approved model" in err  # signed, so it reached the app
        monkeypatch.setenv("FLOWERS_STACK", "flowers-dev")
        code, out, _ = run(capsys, "models", "--json")
        assert code == 0 and json.loads(out) == []
        code, _, err = run(capsys, "models", "--stack", "no-such-stack")
        assert code == 2 and "cannot read stack 'no-such-stack'" in err
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="other", TemplateBody=json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}))
        code, _, err = run(capsys, "models", "--stack", "other")
        assert code == 2 and "no ApiUrl / ApiKeyId output" in err
    assert [h.get("x-api-key") for m, _, h in gateway.seen if m == "GET"] == [KEY, KEY]


# a phone app ------------------------------------------------------------------------------------------------------
def test_a_phone_predicts_with_the_identity_pools_guest_credentials(gateway, tmp_path, monkeypatch, tiny_model):  # noqa: F811
    """Issue 28, item 1: flowers_cli/phone_client.py does what an app does: GetId and GetCredentialsForIdentity from
    the pool (moto's cognito-identity), then a SigV4-signed POST /app/predict with exactly those temporary credentials
    (access key, secret, session token), which the stand-in gateway checks. No API key, no long-lived secret."""
    import boto3
    from moto import mock_aws

    from flowers_cli import phone_client
    from local_fixtures import seed_approved_model
    from pipeline_fixtures import sample_photos

    seed_approved_model(tmp_path / "home", tiny_model)
    with mock_aws():
        cognito = boto3.client("cognito-identity", region_name=REGION)
        pool_id = cognito.create_identity_pool(IdentityPoolName="flowers_apps", AllowUnauthenticatedIdentities=True,
                                               AllowClassicFlow=False)["IdentityPoolId"]
        issued: list[dict] = []
        cognito.meta.events.register("after-call.cognito-identity.GetCredentialsForIdentity",
                                     lambda parsed, **_: issued.append(parsed["Credentials"]))

        def trust(**_: object) -> None:  # the gateway learns each temporary credential as the pool issues it
            for found in issued:
                gateway.secrets[found["AccessKeyId"]] = found["SecretKey"]
                gateway.session_tokens[found["AccessKeyId"]] = found["SessionToken"]
                gateway.principals[found["AccessKeyId"]] = principal("guest")
        cognito.meta.events.register("after-call.cognito-identity.GetCredentialsForIdentity", trust)
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")  # the app has no AWS credentials of its own
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        status, answer = phone_client.predict(gateway.url, sample_photos(1)[0].read_bytes(), pool_id, top_k=2, cognito=cognito)
    assert status == 200 and len(answer["predictions"]) == 2, answer
    ((credentials,),) = [issued]
    ((method, path, headers),) = gateway.seen
    assert (method, path) == ("POST", "/api/app/predict?top_k=2") and "x-api-key" not in headers
    assert f"Credential={credentials['AccessKeyId']}/" in headers["authorization"]
    assert f"/{REGION}/execute-api/aws4_request" in headers["authorization"]
    assert headers["x-amz-security-token"] == credentials["SessionToken"]


def test_the_stand_in_refuses_a_phone_request_without_the_pools_session_token(gateway):
    """The check above can fail: the same keys without their session token, or unsigned, are refused (403)."""
    from flowers_cli import phone_client

    guest = phone_client.GuestCredentials("eu-west-1:id", "ASIAGUEST", "guest-secret", "token-1")
    gateway.secrets["ASIAGUEST"] = "guest-secret"
    gateway.session_tokens["ASIAGUEST"] = "token-1"
    url = gateway.url + "app/models/current"
    status, answer = phone_client.call("GET", url, guest, REGION)
    assert status == 503 and answer["error"]["code"] == "no_model"  # signed right: it reached the app
    forged = phone_client.GuestCredentials("eu-west-1:id", "ASIAGUEST", "guest-secret", "token-2")
    assert phone_client.call("GET", url, forged, REGION) == (403, {"message": "The security token included in the request is invalid"})
    wrong = phone_client.GuestCredentials("eu-west-1:id", "ASIAGUEST", "not-the-secret", "token-1")
    assert phone_client.call("GET", url, wrong, REGION)[0] == 403
