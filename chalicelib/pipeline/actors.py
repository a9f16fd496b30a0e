"""Who did what: the caller of an operator action (approve, reject, rollback, a run by hand), and the record of the
action that the run record keeps (records.RunRecord.actions).

The edge that received the request establishes the caller once (chalicelib/api/operator_request.py: the IAM
principal of the signed request in the cloud, the local user in local mode) and passes it into the Orchestrator,
which writes it into the run record, the registry entry's reason and the domain event. Plain values: what is stored
(DynamoDB, SQLite) and answered (GET /status, GET /models) is `as_dict()`; `from_dict` reads it back and tolerates
what it does not know (a record written by a later release).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Mapping, TypeVar

from chalicelib.contract.vocabulary import ActorKind, Command, Via

E = TypeVar("E", bound=StrEnum)
D = TypeVar("D")

MAX_PRINCIPAL = 512  # an IAM ARN is at most 2048 characters; a record (and a 256-character registry property) keeps less


@dataclass(frozen=True)
class Actor:
    """The caller of an operator action."""

    principal: str  # ActorKind.IAM: the userArn (arn:aws:sts::123456789012:assumed-role/Ops/alice); LOCAL: the user name
    kind: ActorKind
    via: Via
    account: str = ""  # IAM: the AWS account the principal belongs to

    def describe(self) -> str:
        """One line, for a reason and a log: "arn:aws:iam::123456789012:user/alice (iam, cli)"."""
        return f"{self.principal} ({self.kind}, {self.via})"

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"principal": self.principal, "kind": self.kind.value, "via": self.via.value}
        if self.account:
            answer["account"] = self.account
        return answer

    @classmethod
    def from_dict(cls, value: object) -> Actor | None:
        """None for no caller (a run the pipeline started itself) or a value that is not one."""
        if not isinstance(value, Mapping) or not value.get("principal"):
            return None
        return cls(str(value["principal"])[:MAX_PRINCIPAL], _member(ActorKind, value.get("kind"), ActorKind.IAM),
                   _member(Via, value.get("via"), Via.HTTP), str(value.get("account") or ""))


def by_hand(reason: str, actor: Actor) -> str:
    """An operator's reason as the registry keeps it (the SageMaker package's approval description, the local
    registry's entry): who gave it travels with it."""
    return f"{reason} (by {actor.describe()})"


@dataclass(frozen=True)
class OperatorAction:
    """One operator action on a run or its model, as its run record keeps it."""

    command: Command
    by: Actor
    reason: str
    at: float  # epoch seconds
    model_version: str = ""  # approve, reject, rollback: the model acted on

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"command": self.command.value, "by": self.by.as_dict(), "reason": self.reason, "at": self.at}
        if self.model_version:
            answer["model_version"] = self.model_version
        return answer

    @classmethod
    def from_dict(cls, value: object) -> OperatorAction | None:
        if not isinstance(value, Mapping):
            return None
        by = Actor.from_dict(value.get("by"))
        command = _member(Command, value.get("command"), None)
        if by is None or command is None:
            return None
        return cls(command, by, str(value.get("reason", "")), float(value.get("at") or 0),
                   str(value.get("model_version") or ""))


def actions_from(value: object) -> tuple[OperatorAction, ...]:
    """A stored list of actions (none for a record from before actions were kept); entries not understood are left out."""
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(action for action in (OperatorAction.from_dict(v) for v in value) if action is not None)


def _member(enum: type[E], value: object, default: D) -> E | D:
    """The member whose string `value` is, else `default` (a word a later release may have added)."""
    return next((member for member in enum if member == value), default)
