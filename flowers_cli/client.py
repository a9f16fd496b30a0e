"""The model API, over HTTP (a running `flowers up`, or the cloud's URL) or in this process.

With no URL and no `flowers up` running on the home, the CLI calls the same Chalice routes
in-process (Chalice's test gateway over the local adapters): same answers, no server.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalice.test import Client


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    @property
    def error(self) -> str:
        document = self.json()
        if isinstance(document, dict) and isinstance(document.get("error"), dict):
            return f"{document['error'].get('code')}: {document['error'].get('message')}"
        return f"HTTP {self.status}: {self.body[:200]!r}"


def running_url(home: Path) -> str:
    """The URL of the `flowers up` running on this home, or ''."""
    from chalicelib.local.stack import holds_lock

    server = Path(home) / "server.json"
    if not holds_lock(home) or not server.exists():
        return ""
    try:
        return str(json.loads(server.read_text())["url"])
    except (OSError, ValueError, KeyError):
        return ""


class Api:
    def __init__(self, url: str = "", home: Path | None = None):
        self.url = url.rstrip("/") + "/" if url else ""
        self.home = home
        self._client: Client | None = None

    @property
    def where(self) -> str:
        return self.url or f"{self.home} (no server running: answered in this process)"

    def call(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None, timeout: float = 60) -> Answer:
        headers = {"Content-Type": content_type} if content_type else {}
        if self.url:
            request = urllib.request.Request(self.url + path.lstrip("/"), data=body, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return Answer(response.status, dict(response.headers), response.read())
            except urllib.error.HTTPError as error:
                return Answer(error.code, dict(error.headers), error.read())
        if self._client is None:
            from chalice.test import Client

            import app as chalice_app  # only here: the HTTP path imports no Chalice app

            self._client = Client(chalice_app.app)
        response = self._client.http.request(method, "/" + path.lstrip("/"), headers=headers, body=body or b"")
        return Answer(response.status_code, dict(response.headers), response.body or b"")

    def get(self, path: str) -> Answer:
        return self.call("GET", path)

    def post(self, path: str, body: bytes | None = None, content_type: str | None = None) -> Answer:
        return self.call("POST", path, body, content_type)
