"""flowers_cli/client.py: the region of an API Gateway URL, and which routes it signs."""
from __future__ import annotations

from flowers_cli.client import is_signed_route, region_of


def test_the_region_of_an_api_gateway_url():
    assert region_of("https://abc123defg.execute-api.eu-central-1.amazonaws.com/api/") == "eu-central-1"
    assert region_of("http://127.0.0.1:8000/") == ""
    assert is_signed_route("POST", "/models/0123456789abcdef/approve") and is_signed_route("POST", "runs")
    assert not is_signed_route("GET", "models/rollback") and not is_signed_route("POST", "predict?top_k=3")
