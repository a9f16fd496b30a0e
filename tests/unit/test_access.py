"""chalicelib/api/access.py: the route-by-route access decision the stack, the document and the CLI read."""
from __future__ import annotations

from chalicelib.api import access, openapi
from chalicelib.contract.vocabulary import Access


def test_a_request_finds_its_route_literal_segments_first():
    assert access.route_of("GET", "/models/current") == ("/models/current", "get")  # not /models/{version}...
    assert access.route_of("get", "models/0123456789abcdef/photos?limit=3") == ("/models/{version}/photos", "get")
    assert access.route_of("POST", "app/predict?top_k=2") == ("/app/predict", "post")
    assert access.route_of("GET", "/status/summary") == ("/status/summary", "get")
    assert access.route_of("GET", "/predict") is None and access.route_of("GET", "/nope") is None


def test_operator_data_needs_an_operator_and_apps_get_only_their_twins():
    assert access.access_of("GET", "/status") is Access.OPERATOR
    assert access.access_of("GET", "/status/label-issues/thumbnail?file=x.jpg") is Access.OPERATOR
    assert access.access_of("GET", "/models/0123456789abcdef/photos") is Access.OPERATOR
    assert access.routes(Access.APP) == [("/app/models/current", "get"), ("/app/predict", "post")]
    assert access.access_of("GET", "/status/summary") is Access.API_KEY


def test_execute_api_paths_are_what_iam_policies_name():
    assert access.execute_api_path(("/app/predict", "post")) == "POST/app/predict"
    assert access.execute_api_path(("/models/{version}/photos", "get")) == "GET/models/*/photos"
    assert access.execute_api_path(("/", "get")) == "GET/"


def test_the_document_publishes_each_routes_security():
    document = openapi.document()
    assert set(document["components"]["securitySchemes"]) == {"api_key", "sigv4", openapi.LOCAL_TOKEN}
    found = {(path, method): operation["security"] for path, item in document["paths"].items()
             for method, operation in item.items()}
    assert set(found) == set(access.ROUTES)  # every documented route has a decision, and no decision is left over
    expected = {Access.PUBLIC: [], Access.API_KEY: [{"api_key": []}], Access.APP: [{"sigv4": []}], Access.OPERATOR: [{"sigv4": []}, {openapi.LOCAL_TOKEN: []}]}  # SigV4 in AWS, or flowers up's token
    assert all(found[route] == expected[kind] for route, kind in access.ROUTES.items())
    # an operator route documents flowers up's 401 without the token; no other route answers it
    assert all(("401" in operation["responses"]) == (access.ROUTES[(path, method)] == Access.OPERATOR)
               for path, item in document["paths"].items() for method, operation in item.items())
