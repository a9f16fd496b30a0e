"""Every AWS call the handlers make, checked against the role the synthesized stack gives the function making it.

botocore's event hooks see each call on its way out (tests/iam_calls.py maps it to IAM requests; tests/iam_policy.py
evaluates them against the role's statements and the resource policies' Denies):
- `before-parameter-build`: the operation and its parameters, presigned URLs included (the link is as good as the
  role that signed it), recorded with each request's decision;
- `before-call`: a denied call is answered as AWS would (403 AccessDenied), so the code meets the refusal the cloud
  would give it, and never reaches moto;
- `after-call`: a missing S3 key answers 404 only to a role that may list the bucket (ListBucket without an
  s3:prefix condition); otherwise the 404 becomes the 403 S3 would send.

Every denial is also kept in `problems`, so a refusal the code swallows (a 404 page, a logged error) still fails
the test. The function acting is known from the Chalice test client: `lambda_.invoke(name)` is that function
(Chalice's logical id), any HTTP request is the APIHandler; calls outside an invocation (the tests' own setup)
are not checked.

Why not moto's own IAM enforcement: see tests/iam_policy.py.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from iam_calls import UnmappedCall, Where, missing_key_needs, needs
from iam_policy import Decision, Request, Statement, Template, evaluate

API_FUNCTION = "APIHandler"  # Chalice's logical id of the function that serves every route
_DENIED_CODES = {"s3": "AccessDenied", "sqs": "AccessDenied"}  # the others answer AccessDeniedException


class Roles:
    """The stack's function roles, resolved from its template: who may do what."""

    def __init__(self, template: Template, function_kinds: tuple[str, ...] = ("AWS::Serverless::Function",)):
        """`function_kinds`: the app's functions (Chalice's, SAM's type); CDK's deploy-time helpers run no code of ours."""
        self.template = template
        self.function_roles = template.function_roles(function_kinds)
        self.statements: dict[str, list[Statement]] = {role: template.role_statements(role)
                                                       for role in sorted(set(self.function_roles.values()))}
        self.resource_denies = template.resource_denies()

    def role_of(self, function: str) -> str:
        if function not in self.function_roles:
            raise KeyError(f"the template has no function {function!r} with a role (it has {sorted(self.function_roles)})")
        return self.function_roles[function]

    def decide(self, role: str, request: Request, statements: list[Statement] | None = None) -> Decision:
        held = self.statements[role] if statements is None else statements
        principal = self.template.arn(role)
        # The global condition keys every request of a Lambda function carries (over TLS, as its role).
        context = {"aws:PrincipalArn": principal, "aws:PrincipalAccount": self.template.pseudo["AWS::AccountId"],
                   "aws:SecureTransport": "true", **request.context}
        return evaluate([*held, *self.resource_denies], Request(request.action, request.resource, context), principal)


@dataclass
class Call:
    function: str
    role: str
    service: str
    operation: str
    params: dict[str, Any]
    requests: list[Request]
    decisions: list[Decision]
    presigned: bool = False

    def describe(self) -> str:
        shown = {k: v for k, v in self.params.items() if k in ("Bucket", "Key", "Prefix", "TableName", "TrainingJobName",
                                                                  "ProcessingJobName", "ModelPackageName", "ModelPackageArn",
                                                                  "ModelPackageGroupName", "QueueUrl")}
        return f"{self.function} ({self.role}) {self.service} {self.operation}{' (presigned URL)' if self.presigned else ''} {shown}"


@dataclass
class Enforcer:
    roles: Roles
    where: Where
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    acting: str | None = None

    containers: dict[str, Any] = field(default_factory=dict)  # function -> its chalicelib Services (its own clients, caches)
    prepare: Callable[[Any], None] = lambda services: None  # called on each function's Services when first made

    @contextlib.contextmanager
    def acting_as(self, function: str) -> Iterator[None]:
        """Run as `function`: its role, and its own container (chalicelib's Services: clients, cached models), as
        each function has in the cloud; the tests' own setup keeps the process's."""
        from chalicelib import services, settings

        if self.acting is not None:
            raise RuntimeError(f"{function} invoked while {self.acting} runs")
        self.roles.role_of(function)
        if function not in self.containers:
            self.containers[function] = services.Services(settings.get())
            self.prepare(self.containers[function])
        outer, services._services = services._services, self.containers[function]
        self.acting = function
        try:
            yield
        finally:
            self.acting = None
            services._services = outer

    # botocore's hooks ------------------------------------------------------------------------------------------
    def _before_parameter_build(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if self.acting is None:
            return
        function, role = self.acting, self.roles.role_of(self.acting)
        service, operation = model.service_model.service_name, model.name
        presigned = bool(context.get("is_presign_request"))
        try:
            requests = needs(service, operation, params, self.where)
        except UnmappedCall as error:
            self.problems.append(f"{function}: {error.args[0]}")
            context["iam_refusal"] = error.args[0]
            return
        call = Call(function, role, service, operation, copy.deepcopy(dict(params)), requests,
                    [self.roles.decide(role, r) for r in requests], presigned)
        self.calls.append(call)
        context["iam_call"] = call
        refused = [(r, d) for r, d in zip(call.requests, call.decisions) if not d.allowed]
        if refused:
            why = "; ".join(f"{r.action} on {r.resource} {dict(r.context) or ''}: {d.explain()}" for r, d in refused)
            self.problems.append(f"denied: {call.describe()}: {why}")
            context["iam_refusal"] = why

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        why = context.get("iam_refusal")
        if why is None:
            return None
        service = model.service_model.service_name
        head = model.name == "HeadObject"  # a HEAD has no body: botocore names the error by its status
        code = "403" if head else _DENIED_CODES.get(service, "AccessDeniedException")
        return _Response(403), {"Error": {"Code": code, "Message": "Forbidden" if head else f"Access Denied ({why})"},
                                "ResponseMetadata": {"HTTPStatusCode": 403}}

    def _after_call(self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.get("iam_call")
        if call is None or call.service != "s3" or model.name not in ("GetObject", "HeadObject"):
            return
        if http_response.status_code != 404:
            return
        request = missing_key_needs(self.where, call.params)
        decision = self.roles.decide(call.role, request)
        call.requests.append(request)
        call.decisions.append(decision)
        if not decision.allowed:
            self.problems.append(f"a missing key answered 403, not 404: {call.describe()}: s3:ListBucket on "
                                 f"{request.resource} without an s3:prefix: {decision.explain()}")
            head = model.name == "HeadObject"
            parsed["Error"] = {"Code": "403" if head else "AccessDenied", "Message": "Forbidden" if head else "Access Denied"}
            parsed.setdefault("ResponseMetadata", {})["HTTPStatusCode"] = 403

    # wiring ------------------------------------------------------------------------------------------------------
    def install(self, monkeypatch: Any) -> None:
        """Hook every botocore session created from now on, and know which function the Chalice test client runs."""
        import botocore.handlers
        import moto.core.models  # noqa: F401  (first: moto adds its stubber to the list this replaces, on import)
        from chalice import test as chalice_test
        from chalice.utils import to_cfn_resource_name

        monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [
            *botocore.handlers.BUILTIN_HANDLERS, ("before-parameter-build", self._before_parameter_build),
            ("before-call", self._before_call), ("after-call", self._after_call)])
        invoke, request = chalice_test.TestLambdaClient.invoke, chalice_test.TestHTTPClient.request
        enforcer = self

        def invoking(client: Any, function_name: str, *args: Any, **kwargs: Any) -> Any:
            with enforcer.acting_as(to_cfn_resource_name(function_name)):
                return invoke(client, function_name, *args, **kwargs)

        def requesting(client: Any, *args: Any, **kwargs: Any) -> Any:
            with enforcer.acting_as(API_FUNCTION):
                return request(client, *args, **kwargs)

        monkeypatch.setattr(chalice_test.TestLambdaClient, "invoke", invoking)
        monkeypatch.setattr(chalice_test.TestHTTPClient, "request", requesting)

    def report(self) -> str:
        return "\n".join(self.problems)


class _Response:
    """What botocore needs of an HTTP response it did not send."""

    def __init__(self, status_code: int):
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""
        self.text = ""
