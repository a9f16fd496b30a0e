"""The model API, over HTTP (a running `flowers up`, or the cloud's URL) or in this process.

With no URL and no `flowers up` running on the home, the CLI calls the same Chalice routes
in-process (Chalice's test gateway over the local adapters): same answers, no server. To the home's
`flowers up` it sends the home's operator token (HOME/operator-token), which its operator routes need.

Against the cloud (chalicelib's routes behind API Gateway, infra/): who may call each route is
chalicelib/api/access.py's decision. The key routes need the stack's API key (`x-api-key`); the
operator routes (approve, reject, rollback, POST /runs, and the operator data: GET /status with its
file paths and job names, a model's photos, thumbnails) need instead an IAM-signed request (SigV4,
service execute-api), signed here with botocore's signer from the user's AWS credentials. `--stack NAME` reads the URL and the key
from the stack's outputs (CloudFormation, then API Gateway) once per command.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.api import access
from chalicelib.contract.vocabulary import CLI_USER_AGENT

if TYPE_CHECKING:
    from botocore.session import Session as BotocoreSession
    from chalice.test import Client

_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


class CloudError(RuntimeError):
    """The cloud cannot be reached as asked: no credentials, no such stack, outputs missing. The message says what to do."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    @property
    def error(self) -> str:
        document = self.json()
        if isinstance(document, dict) and isinstance(document.get("error"), dict):
            return f"{document['error'].get('code')}: {document['error'].get('message')}"
        if isinstance(document, dict) and isinstance(document.get("message"), str):  # API Gateway's own refusals
            hint = ""
            if self.status == 403 and document["message"] == "Forbidden":
                hint = " (no or a wrong API key: --api-key, FLOWERS_API_KEY or --stack NAME)"
            elif self.status == 403:
                hint = " (operator commands need AWS credentials allowed execute-api:Invoke on the API)"
            return f"HTTP {self.status}: {document['message']}{hint}"
        return f"HTTP {self.status}: {self.body[:200]!r}"


def running_url(home: Path) -> str:
    """The URL of the `flowers up` running on this home, or ''."""
    from chalicelib.local_stack.stack import holds_lock

    server = Path(home) / "server.json"
    if not holds_lock(home) or not server.exists():
        return ""
    try:
        return str(json.loads(server.read_text())["url"])
    except (OSError, ValueError, KeyError):
        return ""


def is_signed_route(method: str, path: str) -> bool:
    """Behind API Gateway's IAM authorizer: the operator routes and the apps' (/app/...)."""
    return access.access_of(method, path) in access.SIGNED


def region_of(url: str) -> str:
    """The region in an API Gateway URL (https://ID.execute-api.REGION.amazonaws.com/STAGE/), or ''."""
    match = _EXECUTE_API_HOST.match(urllib.parse.urlsplit(url).hostname or "")
    return match.group(1) if match else ""


class SigV4Signer:
    """Signs a request for API Gateway (service execute-api) with the caller's AWS credentials (botocore's chain:
    environment, ~/.aws, SSO, instance role), as `awscurl --service execute-api` would."""

    def __init__(self, region: str = "", session: BotocoreSession | None = None):
        import botocore.session

        self._session = session or botocore.session.get_session()
        self.region = region or self._session.get_config_variable("region") or "us-east-1"

    def headers(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = self._session.get_credentials()
        if credentials is None:
            raise CloudError("operator commands (status, models --photos, approve, reject, rollback, retrain) are IAM-signed "
                             "(SigV4) in the cloud and no AWS credentials were found: "
                             "run `aws configure` or `aws sso login`, or set AWS_PROFILE")
        request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
        return {k: str(v) for k, v in request.headers.items()}


@dataclass(frozen=True)
class StackOutputs:
    url: str
    api_key: str


def stack_outputs(name: str, session: Any = None, needed: tuple[str, ...] = ()) -> dict[str, str]:
    """The stack's outputs (CloudFormation DescribeStacks), each of `needed` present."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = session or boto3.session.Session()
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        raise CloudError(f"cannot read stack {name!r}: {exc.response.get('Error', {}).get('Message', exc)}") from None
    except BotoCoreError as exc:  # no credentials, no region, no network
        raise CloudError(f"cannot read stack {name!r}: {exc}") from None
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", [])} if stacks else {}
    missing = [n for n in needed if not outputs.get(n)]
    if missing:
        raise CloudError(f"stack {name!r} has no {' / '.join(missing)} output: is it the flowers stack, deployed "
                         "from this version (make deploy)?")
    return outputs


def read_stack(name: str, session: Any = None) -> StackOutputs:
    """The API URL (output ApiUrl) and the API key's value (output ApiKeyId, then API Gateway's GetApiKey)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = session or boto3.session.Session()
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
        outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", [])} if stacks else {}
        if not outputs.get("ApiUrl") or not outputs.get("ApiKeyId"):
            raise CloudError(f"stack {name!r} has no ApiUrl / ApiKeyId output: is it the flowers stack, fully deployed?")
        key = session.client("apigateway").get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True).get("value", "")
    except ClientError as exc:
        raise CloudError(f"cannot read stack {name!r}: {exc.response.get('Error', {}).get('Message', exc)}") from None
    except BotoCoreError as exc:  # no credentials, no region, no network
        raise CloudError(f"cannot read stack {name!r}: {exc}") from None
    if not key:
        raise CloudError(f"API key {outputs['ApiKeyId']} of stack {name!r} has no value")
    return StackOutputs(outputs["ApiUrl"], key)


class Api:
    def __init__(self, url: str = "", home: Path | None = None, api_key: str = "", signer: SigV4Signer | None = None,
                 token: str = ""):
        self.url = url.rstrip("/") + "/" if url else ""
        self.home = home
        self.api_key = api_key
        self.signer = signer  # set: operator routes are SigV4-signed (the cloud)
        self.token = token  # the home's operator token, for its `flowers up` (chalicelib/local_stack/guard.py)
        self._client: Client | None = None

    @classmethod
    def local(cls, url: str, home: Path) -> Api:
        """The `flowers up` running on `home` (or, with no url, this process): with the home's operator token."""
        from chalicelib.local_stack.guard import read_token

        return cls(url, home, token=read_token(home) if url else "")

    @classmethod
    def cloud(cls, url: str = "", api_key: str = "", stack: str = "") -> Api:
        """The deployed stack's API: URL and key given, or read from the stack's outputs; operator routes signed."""
        if stack:
            outputs = read_stack(stack)
            url, api_key = url or outputs.url, api_key or outputs.api_key
        if not url:
            raise CloudError("the cloud's API needs its URL: --url https://API_URL/api/ (output ApiUrl) or --stack NAME")
        return cls(url, api_key=api_key, signer=SigV4Signer(region_of(url)))

    @property
    def where(self) -> str:
        return self.url or f"{self.home} (no server running: answered in this process)"

    def call(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None, timeout: float = 60) -> Answer:
        # The User-Agent says the CLI sent it: an operator action records "via cli" beside its caller (operator_request.py).
        headers = {"User-Agent": CLI_USER_AGENT, **({"Content-Type": content_type} if content_type else {})}
        if self.url:
            url = self.url + path.lstrip("/")
            if self.api_key:
                headers["x-api-key"] = self.api_key
            if self.token:  # only ever set for the home's own server (Api.local)
                headers["Authorization"] = f"Bearer {self.token}"
            if self.signer is not None and is_signed_route(method, path):
                headers = self.signer.headers(method, url, body, headers)
            request = urllib.request.Request(url, data=body, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return Answer(response.status, dict(response.headers), response.read())
            except urllib.error.HTTPError as error:
                return Answer(error.code, dict(error.headers), error.read())
        if self._client is None:
            from chalice.test import Client

            import app as chalice_app  # only here: the HTTP path imports no Chalice app

            self._client = Client(chalice_app.app)
        response = self._client.http.request(method, "/" + path.lstrip("/"), headers=headers, body=body or b"")
        return Answer(response.status_code, dict(response.headers), response.body or b"")

    def get(self, path: str) -> Answer:
        return self.call("GET", path)

    def post(self, path: str, body: bytes | None = None, content_type: str | None = None) -> Answer:
        return self.call("POST", path, body, content_type)
