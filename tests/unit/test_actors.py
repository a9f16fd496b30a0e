"""Who did what (chalicelib/pipeline/actors.py, chalicelib/api/operator_request.caller): the caller an operator request
names, in the cloud from API Gateway's request context only, locally the local user; stored records read back."""
from __future__ import annotations

from chalicelib.api.operator_request import caller
from chalicelib.contract.vocabulary import CLI_USER_AGENT, ActorKind, Command, Via
from chalicelib.pipeline.actors import MAX_PRINCIPAL, Actor, OperatorAction, actions_from, by_hand

ARN = "arn:aws:sts::123456789012:assumed-role/FlowersOperators/alice"
IDENTITY = {"userArn": ARN, "caller": "AROAEXAMPLE:alice", "accountId": "123456789012", "sourceIp": "203.0.113.9"}


def test_the_cloud_names_the_iam_principal_of_the_request_context_and_nothing_the_request_claims():
    assert caller(IDENTITY, {"User-Agent": f"{CLI_USER_AGENT}/1"}, None) == Actor(ARN, ActorKind.IAM, Via.CLI, "123456789012")
    assert caller(IDENTITY, {"user-agent": "curl/8.5"}, None).via is Via.HTTP
    # Fallbacks, in order: caller, then the account; never a header (the request's own words) nor the Lambda's user.
    assert caller({"caller": "AROAEXAMPLE:bob", "accountId": "1"}, {}, None).principal == "AROAEXAMPLE:bob"
    assert caller({"accountId": "123456789012"}, {"X-Flowers-User": "mallory"}, None).principal == "account 123456789012"
    assert caller({"sourceIp": "127.0.0.1"}, {}, None).principal == caller(None, {}, None).principal == "unknown"
    assert len(caller({"userArn": "arn:" + "x" * 5000}, {}, None).principal) == MAX_PRINCIPAL


def test_local_mode_names_the_local_user_whatever_the_context_says():
    assert caller(IDENTITY, {"User-Agent": CLI_USER_AGENT}, "alice") == Actor("alice", ActorKind.LOCAL, Via.CLI)
    assert caller({}, {"User-Agent": "Mozilla/5.0"}, "alice") == Actor("alice", ActorKind.LOCAL, Via.HTTP)
    assert caller({}, {"User-Agent": "flowers-client-of-mine"}, "alice").via is Via.HTTP  # only the CLI's own agent
    assert caller({}, {}, "").principal == "unknown"


def test_actors_and_actions_read_back_and_what_is_not_understood_is_left_out():
    alice = Actor(ARN, ActorKind.IAM, Via.CLI, "123456789012")
    assert Actor.from_dict(alice.as_dict()) == alice
    assert Actor.from_dict(None) is None and Actor.from_dict({"kind": "iam"}) is None and Actor.from_dict("alice") is None
    assert Actor.from_dict({"principal": "p", "kind": "robot", "via": "pigeon"}) == Actor("p", ActorKind.IAM, Via.HTTP)
    action = OperatorAction(Command.REJECT, alice, "blurry", 5.0, "0123456789abcdef")
    assert actions_from([action.as_dict(), {"command": "launch", "by": alice.as_dict()}, {"command": "approve"}, 7]) == (action,)
    assert actions_from(None) == () and actions_from("[]") == ()
    assert by_hand("blurry", alice) == f"blurry (by {ARN} (iam, cli))"
