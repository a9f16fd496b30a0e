"""An IAM policy evaluator for the tests: the stack's synthesized policies, read from its CloudFormation template, and
AWS's evaluation of one request against them (pure: no AWS, no moto, no botocore).

Why our own and not moto's IAM enforcement (`INITIAL_NO_AUTH_ACTION_COUNT`): moto ignores the conditions our
roles depend on (s3:prefix, sagemaker:InstanceTypes, events:source, iam:PassedToService), enforces few services,
and cannot say which statement allowed a call, which is what proving every grant needed takes
(tests/infra/test_roles_enforced.py). The calls themselves are mapped to IAM requests in tests/iam_calls.py.

What is modelled (what the template uses, and what a helper may plausibly add): Allow and Deny statements with
Action / NotAction and Resource / NotResource wildcards (`*`, `?`); condition operators String*, Arn*, Bool, Null,
Numeric*, each with `IfExists` and the set prefixes `ForAllValues:` / `ForAnyValue:`; an explicit Deny wins,
otherwise a request needs an Allow. Resource-based policies (bucket, queue and bus policies) are read for their
Deny statements only: every caller here is in the stack's own account, where the identity policy's Allow suffices.
Not modelled: policy variables, permission boundaries, SCPs, session policies, KMS key policies.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Iterable, Mapping

ContextValue = str | tuple[str, ...]


# statements, requests, decisions ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (operator, key, values)
    not_actions: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    principals: tuple[str, ...] | None = None  # None: an identity policy's (applies to its own principal)
    sid: str = ""
    origin: str = ""  # where it is: "role PipelineFunctionRole", "bucket policy ..."

    @property
    def label(self) -> str:
        return f"{self.origin} {self.sid or '(no Sid)'}".strip()

    def without_action(self, action: str) -> Statement | None:
        """This statement with one of its actions taken out (None when nothing is left): what removing a grant means."""
        left = tuple(a for a in self.actions if a != action)
        return None if not left else Statement(self.effect, left, self.resources, self.conditions, self.not_actions,
                                               self.not_resources, self.principals, self.sid, self.origin)


@dataclass(frozen=True)
class Request:
    action: str  # "s3:GetObject"
    resource: str  # an ARN, or "*" for an action with no resource type
    context: Mapping[str, ContextValue] = field(default_factory=dict)  # condition keys the request carries


@dataclass(frozen=True)
class Decision:
    allowed: bool
    allowed_by: tuple[Statement, ...]
    denied_by: tuple[Statement, ...]

    def explain(self) -> str:
        if self.denied_by:
            return "explicitly denied by " + ", ".join(s.label for s in self.denied_by)
        if self.allowed:
            return "allowed by " + ", ".join(s.label for s in self.allowed_by)
        return "no statement allows it"


def evaluate(statements: Iterable[Statement], request: Request, principal: str = "") -> Decision:
    """AWS's rule for one account: an explicit Deny that matches wins; otherwise an Allow that matches allows."""
    allows, denies = [], []
    for statement in statements:
        if statement.principals is not None and not any(p == "*" or p == principal for p in statement.principals):
            continue
        if matches(statement, request):
            (denies if statement.effect == "Deny" else allows).append(statement)
    return Decision(bool(allows) and not denies, tuple(allows), tuple(denies))


def matches(statement: Statement, request: Request) -> bool:
    if statement.actions and not any(_glob(a, request.action, fold=True) for a in statement.actions):
        return False
    if statement.not_actions and any(_glob(a, request.action, fold=True) for a in statement.not_actions):
        return False
    if statement.resources and not any(_glob(r, request.resource) for r in statement.resources):
        return False
    if statement.not_resources and any(_glob(r, request.resource) for r in statement.not_resources):
        return False
    return all(condition_holds(op, key, values, request.context) for op, key, values in statement.conditions)


@lru_cache(maxsize=4096)
def _pattern(pattern: str, fold: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if fold else 0))


def _glob(pattern: str, value: str, fold: bool = False) -> bool:
    """IAM's wildcards: `*` any run of characters (`/` and `:` included), `?` one character."""
    return _pattern(pattern, fold).fullmatch(value) is not None


# conditions ------------------------------------------------------------------------------------------------------
def _number(value: str) -> float:
    return float(value)


def _date(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# operator -> (does one request value match one policy value, is the operator a negation of that match)
_OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (lambda have, want: have == want, False),
    "StringNotEquals": (lambda have, want: have == want, True),
    "StringEqualsIgnoreCase": (lambda have, want: have.lower() == want.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda have, want: have.lower() == want.lower(), True),
    "StringLike": (lambda have, want: _glob(want, have), False),
    "StringNotLike": (lambda have, want: _glob(want, have), True),
    "ArnEquals": (lambda have, want: _glob(want, have), False),  # ArnEquals takes wildcards too, as ArnLike
    "ArnLike": (lambda have, want: _glob(want, have), False),
    "ArnNotEquals": (lambda have, want: _glob(want, have), True),
    "ArnNotLike": (lambda have, want: _glob(want, have), True),
    "Bool": (lambda have, want: have.lower() == want.lower(), False),
    "NumericEquals": (lambda have, want: _number(have) == _number(want), False),
    "NumericNotEquals": (lambda have, want: _number(have) == _number(want), True),
    "NumericLessThan": (lambda have, want: _number(have) < _number(want), False),
    "NumericLessThanEquals": (lambda have, want: _number(have) <= _number(want), False),
    "NumericGreaterThan": (lambda have, want: _number(have) > _number(want), False),
    "NumericGreaterThanEquals": (lambda have, want: _number(have) >= _number(want), False),
    "DateLessThan": (lambda have, want: _date(have) < _date(want), False),
    "DateLessThanEquals": (lambda have, want: _date(have) <= _date(want), False),
    "DateGreaterThan": (lambda have, want: _date(have) > _date(want), False),
    "DateGreaterThanEquals": (lambda have, want: _date(have) >= _date(want), False),
}


def _lookup(context: Mapping[str, ContextValue], key: str) -> tuple[str, ...] | None:
    """A condition key's values in the request (keys are case-insensitive); None when the request lacks it."""
    for name, value in context.items():
        if name.lower() == key.lower():
            return (value,) if isinstance(value, str) else tuple(value)
    return None


def condition_holds(operator: str, key: str, wanted: tuple[str, ...], context: Mapping[str, ContextValue]) -> bool:
    """One operator on one key. A key the request lacks: false for a positive operator, true for a negated one
    (StringNotEquals ...) and with `...IfExists`; `ForAllValues:` holds for a missing key, `ForAnyValue:` does not."""
    have = _lookup(context, key)
    if operator == "Null":  # "true": the key must be absent
        return (have is None) == (wanted[0].lower() == "true")
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS:
        raise ValueError(f"condition operator {operator!r} is not modelled (tests/iam_policy.py _OPERATORS)")
    match, negated = _OPERATORS[base]

    def one(value: str) -> bool:
        hit = any(match(value, w) for w in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return have is None or all(one(v) for v in have)
    if qualifier == "ForAnyValue":
        return have is not None and any(one(v) for v in have)
    if qualifier:
        raise ValueError(f"condition qualifier {qualifier!r} is not modelled")
    if have is None:
        return if_exists or negated
    return any(one(v) for v in have) if not negated else all(one(v) for v in have)


# statements from a policy document ---------------------------------------------------------------------------------
def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


def _principals(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if value == "*":
        return ("*",)
    found: list[str] = []
    for kind, who in value.items():
        found += [w for w in _strings(who)] if kind == "AWS" else [f"{kind}:{w}" for w in _strings(who)]
    return tuple(found)


def parse_statement(raw: Mapping[str, Any], origin: str = "") -> Statement:
    """One statement of a policy document whose intrinsic functions are resolved already (Template.resolve)."""
    conditions = tuple((op, key, _strings(values)) for op, keys in (raw.get("Condition") or {}).items()
                       for key, values in keys.items())
    return Statement(effect=raw["Effect"], actions=_strings(raw.get("Action")), resources=_strings(raw.get("Resource")),
                     conditions=conditions, not_actions=_strings(raw.get("NotAction")),
                     not_resources=_strings(raw.get("NotResource")), principals=_principals(raw.get("Principal")),
                     sid=str(raw.get("Sid", "")), origin=origin)


# the synthesized template ------------------------------------------------------------------------------------------
# The property that fixes a resource's physical name, by type (absent: CloudFormation generates it).
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName", "AWS::SQS::Queue": "QueueName", "AWS::Events::EventBus": "Name",
    "AWS::DynamoDB::Table": "TableName", "AWS::Serverless::Function": "FunctionName", "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName", "AWS::IAM::Role": "RoleName", "AWS::SNS::Topic": "TopicName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName", "AWS::ECR::Repository": "RepositoryName",
}
# A resource's ARN from its name, by type ({p} partition, {r} region, {a} account, {n} name).
ARN_FORMATS = {
    "AWS::S3::Bucket": "arn:{p}:s3:::{n}", "AWS::SQS::Queue": "arn:{p}:sqs:{r}:{a}:{n}",
    "AWS::Events::EventBus": "arn:{p}:events:{r}:{a}:event-bus/{n}", "AWS::DynamoDB::Table": "arn:{p}:dynamodb:{r}:{a}:table/{n}",
    "AWS::Serverless::Function": "arn:{p}:lambda:{r}:{a}:function:{n}", "AWS::Lambda::Function": "arn:{p}:lambda:{r}:{a}:function:{n}",
    "AWS::Logs::LogGroup": "arn:{p}:logs:{r}:{a}:log-group:{n}:*", "AWS::IAM::Role": "arn:{p}:iam::{a}:role/{n}",
    "AWS::SNS::Topic": "arn:{p}:sns:{r}:{a}:{n}", "AWS::SageMaker::ModelPackageGroup": "arn:{p}:sagemaker:{r}:{a}:model-package-group/{n}",
    "AWS::ECR::Repository": "arn:{p}:ecr:{r}:{a}:repository/{n}",
}
# Resource-based policies: type -> the property holding the document (their Deny statements apply to every caller).
RESOURCE_POLICIES = {"AWS::S3::BucketPolicy": "PolicyDocument", "AWS::SQS::QueuePolicy": "PolicyDocument",
                     "AWS::Events::EventBusPolicy": None}  # the bus policy holds one statement in "Statement"


class Template:
    """A synthesized CloudFormation template with its intrinsic functions resolved to the names one account and
    region would give: fixed names as the template renders them, generated ones as the tests name them (bind)."""

    def __init__(self, raw: Mapping[str, Any], *, account: str, region: str, partition: str = "aws", stack: str = "flowers"):
        self.raw = raw
        self.resources: Mapping[str, Mapping[str, Any]] = raw["Resources"]
        self.pseudo = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": partition,
                       "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": stack, "AWS::NoValue": ""}
        self.names: dict[str, str] = {}  # logical id -> physical name, where the tests name it
        self.arns: dict[str, str] = {}  # logical id -> ARN, where the tests give it
        self.renames: dict[str, str] = {}  # a fixed name as the template renders it -> the tests' name for it
        self.stack = stack

    # names --------------------------------------------------------------------------------------------------------
    def fixed_name(self, lid: str) -> str | None:
        resource = self.resources[lid]
        prop = NAME_PROPERTIES.get(resource["Type"])
        value = resource.get("Properties", {}).get(prop) if prop else None
        return self._resolve(value) if value is not None else None

    def name(self, lid: str) -> str:
        if lid in self.names:
            return self.names[lid]
        fixed = self.fixed_name(lid)
        return fixed if fixed is not None else f"{self.stack}-{lid}"  # a generated name: any stable one will do

    def arn(self, lid: str) -> str:
        if lid in self.arns:
            return self.arns[lid]
        kind = self.resources[lid]["Type"]
        if kind not in ARN_FORMATS:
            raise KeyError(f"no ARN format for {kind} ({lid}): add it to tests/iam_policy.py ARN_FORMATS")
        p, r, a = self.pseudo["AWS::Partition"], self.pseudo["AWS::Region"], self.pseudo["AWS::AccountId"]
        return ARN_FORMATS[kind].format(p=p, r=r, a=a, n=self.name(lid))

    def bind(self, template_value: Any, test_value: str) -> None:
        """The tests' name for what the template names `template_value` (a Ref or a GetAtt ... Arn), e.g. a function's
        environment variable and the value the tests set it to. Literal values bind nothing."""
        if not isinstance(template_value, dict):
            return
        if "Ref" in template_value and template_value["Ref"] in self.resources:
            lid = template_value["Ref"]
            fixed = self.fixed_name(lid)
            if fixed is not None and fixed != test_value:
                self.renames[fixed] = test_value
            self.names[lid] = test_value
        elif "Fn::GetAtt" in template_value and template_value["Fn::GetAtt"][1] == "Arn":
            lid = template_value["Fn::GetAtt"][0]
            self.arns[lid] = test_value
            self.names[lid] = test_value.rsplit("/", 1)[-1]

    # intrinsic functions --------------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function replaced by the string it stands for (lists and dicts walked)."""
        resolved = self._resolve(value)
        return self._renamed(resolved)

    def _renamed(self, value: Any) -> Any:
        if isinstance(value, str):
            for fixed, test in self.renames.items():
                value = value.replace(fixed, test)
            return value
        if isinstance(value, list):
            return [self._renamed(v) for v in value]
        if isinstance(value, dict):
            return {k: self._renamed(v) for k, v in value.items()}
        return value

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                if argument in self.pseudo:
                    return self.pseudo[argument]
                kind = self.resources[argument]["Type"]
                return self.arn(argument) if kind == "AWS::SNS::Topic" else self.name(argument)  # a topic's Ref is its ARN
            if function == "Fn::GetAtt":
                lid, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self._attribute(lid, attribute)
            if function == "Fn::Join":
                separator, parts = argument
                return separator.join(str(self._resolve(p)) for p in parts)
            if function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return re.sub(r"\$\{([^}!][^}]*)\}", lambda m: self._sub(m.group(1), variables), text)
            if function == "Fn::Select":
                index, items = argument
                return self._resolve(items)[int(self._resolve(index))]
            if function == "Fn::Split":
                separator, text = argument
                return str(self._resolve(text)).split(separator)
        return {k: self._resolve(v) for k, v in value.items()}

    def _sub(self, name: str, variables: Mapping[str, Any]) -> str:
        if name in variables:
            return str(self._resolve(variables[name]))
        if name in self.pseudo:
            return self.pseudo[name]
        if "." in name:
            lid, attribute = name.split(".", 1)
            return str(self._attribute(lid, attribute))
        return str(self._resolve({"Ref": name}))

    def _attribute(self, lid: str, attribute: str) -> str:
        if attribute == "Arn":
            return self.arn(lid)
        if attribute in ("QueueName", "Name"):
            return self.name(lid)
        raise KeyError(f"Fn::GetAtt {lid}.{attribute} is not modelled (tests/iam_policy.py Template._attribute)")

    # the stack's policies ---------------------------------------------------------------------------------------------
    def of_type(self, kind: str) -> dict[str, Mapping[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if r["Type"] == kind}

    def function_roles(self, kinds: tuple[str, ...] = ("AWS::Serverless::Function", "AWS::Lambda::Function")) -> dict[str, str]:
        """Each function's role: function logical id -> role logical id (from the function's Role, a GetAtt ... Arn)."""
        found = {}
        for kind in kinds:
            for lid, function in self.of_type(kind).items():
                role = function["Properties"].get("Role")
                if isinstance(role, dict) and "Fn::GetAtt" in role:
                    found[lid] = role["Fn::GetAtt"][0]
        return found

    def role_statements(self, role: str) -> list[Statement]:
        """Every statement a role holds: its inline policies and the AWS::IAM::Policy resources attached to it. A
        managed policy cannot be read from the template: a role with one fails here, loudly."""
        props = self.resources[role]["Properties"]
        if props.get("ManagedPolicyArns"):
            raise ValueError(f"role {role} has managed policies {props['ManagedPolicyArns']}: not in the template, not evaluated")
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        documents += [p["Properties"]["PolicyDocument"] for p in self.of_type("AWS::IAM::Policy").values()
                      if {"Ref": role} in p["Properties"].get("Roles", [])]
        return [parse_statement(self.resolve(s), f"role {role}") for d in documents for s in d["Statement"]]

    def resource_denies(self) -> list[Statement]:
        """The Deny statements of the bucket, queue and bus policies (their Allows matter only across accounts)."""
        found = []
        for kind, prop in RESOURCE_POLICIES.items():
            for lid, resource in self.of_type(kind).items():
                props = resource["Properties"]
                statements = props[prop]["Statement"] if prop else [props["Statement"]] if "Statement" in props else []
                for raw in statements:
                    if raw["Effect"] == "Deny":
                        found.append(parse_statement(self.resolve(raw), f"{kind.split('::')[1].lower()} policy {lid}"))
        return found

    def environment(self, function: str) -> dict[str, Any]:
        return dict(self.resources[function]["Properties"].get("Environment", {}).get("Variables", {}))


def load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
