"""The headers every HTTP answer carries, in the cloud (app.py's middleware) and on `flowers up` (local_stack/http.py,
for the answers it makes itself: 404, 405, 413, 421, model files).

- Content-Security-Policy `default-src 'self'; frame-ancestors 'none'`: a JSON or picture answer opened as a
  document runs nothing and loads nothing from elsewhere, and no page of another site can frame ours (clickjacking).
- X-Content-Type-Options `nosniff`: a browser takes each answer as its Content-Type says (a JSON error is never
  run as a script, a thumbnail never read as HTML).
- Referrer-Policy `no-referrer`: the page's links (the model download, openapi.json) tell no one where they came
  from; the page needs no Referer anywhere.

The page itself (`page_policy`) differs in two places only: its one inline <script> and <style> run because their
sha256 is in the policy (no 'unsafe-inline': an injected script has no matching hash), and its images may be
`blob:` (the photos tried, the confusion matrix and thumbnails it fetches with headers) and `data:` (its icon).
"""
from __future__ import annotations

import base64
import hashlib
import re
from typing import Any, MutableMapping

POLICY = "default-src 'self'; frame-ancestors 'none'"
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def page_policy(html: str) -> str:
    """The page's policy: POLICY, plus the hashes of its inline <script> and <style> blocks and blob:/data: images."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for tag, text in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
        hashes[tag].append(f"'sha256-{digest}'")
    script, style = (" ".join(hashes[tag]) or "'none'" for tag in ("script", "style"))
    return f"default-src 'self'; script-src {script}; style-src {style}; img-src 'self' blob: data:; frame-ancestors 'none'"


def add(headers: MutableMapping[str, Any]) -> None:
    """Add each header `headers` lacks (a route may set its own: the page's policy), whatever the case of its name."""
    present = {name.lower() for name in headers}
    for name, value in HEADERS.items():
        if name.lower() not in present:
            headers[name] = value
