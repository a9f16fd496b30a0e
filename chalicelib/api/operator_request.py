"""Validation of the operator routes (approve, reject, rollback, runs): a pure function from headers
and body to the JSON document, refusing what a web page of another site could forge; and who the caller is
(`caller`), which the Orchestrator records with the action.

Local mode has no authentication, so any page a user visits could POST to 127.0.0.1:8000.
A browser sends such a cross-site form or `fetch` without a preflight only with a "simple"
content type (form, text/plain), and marks it with `Origin` and `Sec-Fetch-Site`. So an
operator request must say `Content-Type: application/json` (else 415), and a browser request
from anywhere but the page's own origin is refused (403). Clients that are not browsers (the
CLI, curl) send neither header. The cloud checks the same, behind its IAM authorizer.
"""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlsplit

from chalicelib.contract.vocabulary import CLI_USER_AGENT, ActorKind, Via
from chalicelib.pipeline.actors import MAX_PRINCIPAL, Actor

from chalicelib.api import request_schema
from chalicelib.api.errors import ApiError, too_large, unsupported
from chalicelib.api.predict_request import JSON_TYPE, media_type

MAX_JSON_BYTES = 64 * 1024
_OWN_SITE = ("same-origin", "none")  # "none": typed in the address bar or a bookmark, not a page


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((str(value) for key, value in headers.items() if key.lower() == name), "")


def cross_site(headers: Mapping[str, str]) -> str:
    """Why a browser request comes from another site, or "" when it does not."""
    fetch_site = _header(headers, "sec-fetch-site").lower()
    if fetch_site and fetch_site not in _OWN_SITE:
        return f"Sec-Fetch-Site is {fetch_site!r}"
    origin = _header(headers, "origin")
    if origin:
        host = _header(headers, "host").lower()
        if origin == "null" or urlsplit(origin).netloc.lower() != host:
            return f"Origin {origin} is not this API's ({host or 'no Host header'})"
    return ""


def parse(headers: Mapping[str, str], raw: bytes | None) -> Any:
    """The request's JSON ({} for an empty body), for its operation's schema to check
    (request_schema.json_body); ApiError for a forged request or a body that is not JSON."""
    reason = cross_site(headers)
    if reason:
        raise ApiError("cross_site_request", f"model actions are refused from other sites: {reason}", 403)
    if media_type(_header(headers, "content-type")) != JSON_TYPE:
        raise unsupported("model actions take Content-Type: application/json (the body may be empty)")
    if not raw:
        return {}
    if len(raw) > MAX_JSON_BYTES:
        raise too_large("the JSON body is too large")
    return request_schema.load_json(raw)


UNKNOWN_PRINCIPAL = "unknown"


def via(headers: Mapping[str, str]) -> Via:
    agent = _header(headers, "user-agent")
    return Via.CLI if agent == CLI_USER_AGENT or agent.startswith(CLI_USER_AGENT + "/") else Via.HTTP


def caller(identity: Mapping[str, Any] | None, headers: Mapping[str, str], local_user: str | None) -> Actor:
    """Who sent an operator request. In the cloud (`local_user` None) API Gateway's request context says it: the
    routes have the IAM authorizer, so `identity.userArn` is the signed request's principal (else `caller`, then the
    account, then "unknown": never anything the request itself claims). In local mode, which has no login, it is the
    local user the server runs as. `via`: the CLI or plain HTTP, from the User-Agent (a label, not a proof)."""
    how = via(headers)
    if local_user is not None:
        return Actor(local_user[:MAX_PRINCIPAL] or UNKNOWN_PRINCIPAL, ActorKind.LOCAL, how)
    found = identity or {}
    account = str(found.get("accountId") or "")
    principal = str(found.get("userArn") or found.get("caller") or (f"account {account}" if account else UNKNOWN_PRINCIPAL))
    return Actor(principal[:MAX_PRINCIPAL], ActorKind.IAM, how, account)
