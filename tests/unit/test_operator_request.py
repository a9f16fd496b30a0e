"""chalicelib/api/operator_request.py: operator requests from another site are told apart."""
from __future__ import annotations


def test_operator_requests_from_other_sites_are_told_apart():
    from chalicelib.api.operator_request import cross_site

    assert cross_site({}) == ""  # the CLI, curl: no browser headers
    assert cross_site({"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8000", "Host": "127.0.0.1:8000"}) == ""
    assert cross_site({"sec-fetch-site": "none"}) == ""  # typed into the address bar
    assert "same-site" in cross_site({"Sec-Fetch-Site": "same-site"})  # another port of localhost is the same site
    assert "localhost:8000" in cross_site({"Origin": "http://localhost:8000", "Host": "127.0.0.1:8000"})
    assert cross_site({"Origin": "null", "Host": "127.0.0.1:8000"})  # sandboxed frames and file:// pages
