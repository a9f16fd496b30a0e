"""chalicelib/api/security_headers.py: the headers every answer gets, and the page's policy (its inline blocks by hash)."""
from __future__ import annotations

import base64
import hashlib

from chalicelib.api import security_headers
from chalicelib.api.web import index_html


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_missing_headers_are_added_and_a_route_s_own_kept():
    headers = {"content-security-policy": "the page's", "Content-Type": "application/json"}
    security_headers.add(headers)
    assert headers == {"content-security-policy": "the page's", "Content-Type": "application/json",
                       "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    fresh: dict[str, str] = {}
    security_headers.add(fresh)
    assert fresh["Content-Security-Policy"] == "default-src 'self'; frame-ancestors 'none'"


def test_the_page_policy_allows_exactly_its_inline_blocks():
    html = "<style>b{}</style><p>x</p><script>go()</script>"
    assert security_headers.page_policy(html) == (f"default-src 'self'; script-src {_hash('go()')}; style-src {_hash('b{}')}; "
                                                  "img-src 'self' blob: data:; frame-ancestors 'none'")
    assert "script-src 'none'; style-src 'none'" in security_headers.page_policy("<p>no blocks</p>")


def test_the_real_page_has_one_script_and_one_style_and_no_inline_handlers_or_styles():
    html = index_html()
    assert html.count("<script>") == 1 and html.count("<style>") == 1 and "<script " not in html
    body = html[html.index("</style>"):html.index("<script>")]
    assert " style=" not in body and " onclick=" not in body.lower() and "javascript:" not in body
    assert "'unsafe-inline'" not in security_headers.page_policy(html)
