"""Who may call each HTTP route in the cloud: the one decision, route by route, that the rest reads.

- app.py puts Chalice's IAM authorizer on exactly the APP and OPERATOR routes (tests/infra checks they agree);
- the stack (infra/flowers_infra/chalice_app.py) asks for the API key on the API_KEY routes, nothing on the PUBLIC
  ones, and lets the Cognito identity pool's guest role invoke the APP routes and nothing else;
- the OpenAPI document (openapi.py) publishes each operation's security;
- the CLI (flowers_cli/client.py) signs the OPERATOR routes with SigV4; an app signs the APP routes.

Why twin routes for apps (/app/predict, /app/models/current) rather than one route taking both a key and a
signature: API Gateway (REST) takes one authorizer per method, and an API key alone is not authentication (a key
pulled out of an app package spends everyone's quota). So the key routes stay as they are for scripts and the web
page (a key each, revocable), and phones call the same handlers under /app/ signed with the identity pool's
short-lived guest credentials, which their IAM policy confines to those two routes. Making /predict IAM-only
instead would have the page sign requests in JavaScript with guest credentials too: more code in the page for no
gain over its own key.

Operator data (issue 28, item 4): the photos a model was trained on (/models/{version}/photos), the full pipeline
status with file paths, job names and who did what (/status), and the photos themselves (thumbnails) are for
operators; the page and scripts read /status/summary, the same status without them (chalicelib/pipeline/
status_summary.py). Likewise GET /models answers named fields and a reason chosen from each version's status
(chalicelib/pipeline/model_rows.py); who asked for a run, job names and the registry's full reasons (which name the
principal who approved, relabelled photos, failures' S3 URIs) are GET /models/detail's, an operator route.
"""
from __future__ import annotations

import re
from functools import lru_cache

from chalicelib.contract.vocabulary import Access

APP_PREFIX = "/app"  # the apps' (phones') twins of the routes they need

ROUTES: dict[tuple[str, str], Access] = {
    ("/", "get"): Access.PUBLIC,  # the web page: it asks for its API key
    ("/openapi.json", "get"): Access.PUBLIC,  # the contract, read before a client has credentials
    ("/predict", "post"): Access.API_KEY,
    ("/models", "get"): Access.API_KEY,
    ("/models/current", "get"): Access.API_KEY,
    ("/models/{version}/confusion-matrix", "get"): Access.API_KEY,
    ("/status/summary", "get"): Access.API_KEY,
    (f"{APP_PREFIX}/predict", "post"): Access.APP,
    (f"{APP_PREFIX}/models/current", "get"): Access.APP,  # metadata and the presigned model download link
    ("/status", "get"): Access.OPERATOR,  # file paths (skipped, likely mislabelled), job names, who did what
    ("/status/label-issues/thumbnail", "get"): Access.OPERATOR,  # the data set's photos
    ("/models/{version}/photos", "get"): Access.OPERATOR,  # lineage: keys, ETags, version ids
    ("/models/detail", "get"): Access.OPERATOR,  # GET /models with who asked for each run, job names, full reasons
    ("/models/{version}/approve", "post"): Access.OPERATOR,
    ("/models/{version}/reject", "post"): Access.OPERATOR,
    ("/models/rollback", "post"): Access.OPERATOR,
    ("/runs", "post"): Access.OPERATOR,  # starts paid GPU jobs
}

SIGNED = (Access.APP, Access.OPERATOR)  # behind API Gateway's IAM authorizer (SigV4)


def routes(*kinds: Access) -> list[tuple[str, str]]:
    """The (path, method) of every route with one of these kinds of access, sorted."""
    return sorted(route for route, kind in ROUTES.items() if kind in kinds)


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[re.Pattern[str], str, tuple[str, str]]]:
    # A literal segment wins over a {parameter} (as API Gateway matches): /models/current is not /models/{version}.
    found = []
    for path, method in ROUTES:
        regex = "/".join("[^/]+" if part.startswith("{") else re.escape(part) for part in path.split("/"))
        found.append((re.compile(f"^{regex}$"), method, (path, method)))
    found.sort(key=lambda item: item[2][0].count("{"))
    return found


def route_of(method: str, path: str) -> tuple[str, str] | None:
    """The declared route a request goes to (`path` as sent, relative or not, with or without a query), or None."""
    concrete = "/" + path.split("?", 1)[0].lstrip("/")
    for pattern, declared_method, route in _patterns():
        if declared_method == method.lower() and pattern.match(concrete):
            return route
    return None


def access_of(method: str, path: str) -> Access | None:
    route = route_of(method, path)
    return None if route is None else ROUTES[route]


def execute_api_path(route: tuple[str, str]) -> str:
    """A route as an execute-api:Invoke resource's tail (METHOD/path, a {parameter} as *): what IAM policies name."""
    path, method = route
    return method.upper() + "/" + "/".join("*" if p.startswith("{") else p for p in path.strip("/").split("/"))
