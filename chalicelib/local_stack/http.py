"""`flowers up`'s HTTP server: the app's routes through Chalice's API Gateway emulation.

Requests go to `chalice.local.LocalGateway` (its public class: the event API Gateway would
send, the authorizers, the response mapping), so routes, status codes and JSON are the
cloud's. Beside the API: the model files at /files/ (the cloud hands out presigned S3 links
instead), and a body limit checked before the body is read. One lock serialises the
invocations, as one Lambda container runs one request at a time.

Unknown routes and methods answer in the API's error shape (404 `not_found`, 405
`method_not_allowed` with `Allow`), from the OpenAPI document's paths and methods, before the
gateway: Chalice's emulation of API Gateway answers 403 "Missing Authentication Token" for a
route that does not exist (misleading on a server that has no authentication), a 405 body of
`{"Code", "Message"}`, and a CORS preflight's 200 to OPTIONS (the API has no CORS). Every
method is answered so, whatever its name: the standard library's server would answer a 501
HTML page for one it has no do_<METHOD> for (TRACE, PROPFIND, QUERY, ...).

Before all of that (local_stack/guard.py): a Host other than a loopback name on the bound port is 421
`misdirected_request` (DNS rebinding), and an operator route without the home's operator token 401 `unauthorized`.
Every answer carries the security headers (api/security_headers.py), those the server makes itself included.
"""
from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import unquote, urlsplit

from chalice.local import LocalGateway, LocalGatewayException, RouteMatcher

from chalicelib.api import access, openapi, security_headers
from chalicelib.contract.vocabulary import Access

from chalicelib.contract.bucket_layout import MODELS_PREFIX
from chalicelib.local_stack import guard

MAX_BODY_BYTES = 16 * 1024 * 1024  # refuse bigger bodies before reading them (the API's own limit is 4 MiB)
PUBLIC_FILES = re.compile(rf"^/files/({re.escape(MODELS_PREFIX)}[0-9a-f]{{16}}/(?:model\.tflite|labels\.txt|metadata\.json))$")
_FILE_TYPES = {".json": "application/json", ".txt": "text/plain"}
_ROUTES = RouteMatcher(list(openapi.PATHS))  # the document's paths are the app's routes (tests/test_openapi.py)
# (route, METHOD) of the operations behind the operator token: the operator routes (chalicelib/api/access.py), as in AWS
OPERATOR_OPERATIONS = frozenset((route, method.upper()) for route, method in access.routes(Access.OPERATOR))

Headers = Mapping[str, "str | list[str]"]


class GatewayServer(ThreadingHTTPServer):
    """One thread per connection; every request through one gateway, under `invoke_lock`."""

    allow_reuse_address = True
    daemon_threads = True
    # The listen backlog (socketserver's default is 5): 16 clients connecting at once overflowed it,
    # and Linux drops a connection it cannot queue, so its client waited for a SYN retry (1 s) or
    # saw its connection reset (bench/load.py).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], gateway: LocalGateway, invoke_lock: threading.RLock, files: Path,
                 operator_token: str):
        super().__init__(address, _Handler)
        self.gateway = gateway
        self.invoke_lock = invoke_lock
        self.files = files
        self.operator_token = operator_token  # HOME/operator-token (guard.ensure_token)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client's next request reuses the connection
    disable_nagle_algorithm = True  # headers and body leave at once, not after the client's delayed ACK
    server: GatewayServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the console shows the pipeline
        pass

    def __getattr__(self, name: str) -> Callable[[], None]:
        """do_<METHOD> for every method a client may send (BaseHTTPRequestHandler looks it up by name)."""
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _handle(self) -> None:
        path = urlsplit(self.path).path
        host = self.headers.get("host")
        if not guard.host_allowed(host, self.server.port):  # first: a rebinding page gets nothing, not even a file
            return self._send_json(421, "misdirected_request",
                                   f"this server answers only to 127.0.0.1, localhost or [::1] on port {self.server.port}, "
                                   f"not to Host {host!r}", close=True)
        if self.command == "GET" and path.startswith("/files/"):
            return self._send_file(unquote(path))
        length = self.headers.get("content-length") or "0"
        if not length.isdigit():
            return self._send_json(400, "bad_request", "the Content-Length header is not a number", close=True)
        if int(length) > MAX_BODY_BYTES:
            return self._send_json(413, "too_large", f"the body has {length} bytes; images are limited to 4 MiB", close=True)
        body = self.rfile.read(int(length)) if int(length) else None
        try:  # the route, as Chalice's gateway matches it, among the operations of the document
            route = _ROUTES.match_route(self.path).route
        except ValueError:
            return self._send_json(404, "not_found", f"no route {path} (the API's routes: GET /openapi.json)")
        allowed = [method.upper() for method in openapi.PATHS[route]]
        if self.command not in allowed:
            return self._send_json(405, "method_not_allowed", f"{path} answers {', '.join(allowed)}, not {self.command}",
                                   extra={"Allow": ", ".join(allowed)})
        if (route, self.command) in OPERATOR_OPERATIONS and not guard.token_matches(self.server.operator_token, dict(self.headers)):
            return self._send_json(401, "unauthorized", f"{self.command} {path} is an operator route: it needs the home's operator "
                                   f"token (Authorization: Bearer, from {guard.TOKEN_FILE} in the home; the flowers CLI sends it)",
                                   extra={"WWW-Authenticate": "Bearer"})
        try:
            with self.server.invoke_lock:
                response = self.server.gateway.handle_request(method=self.command, path=self.path,
                                                              headers=dict(self.headers), body=body)
        except LocalGatewayException as error:
            return self._send(error.CODE, dict(error.headers), error.body or b"")
        headers = {**response["headers"], **response["multiValueHeaders"]}
        payload = response["body"]
        if response.get("isBase64Encoded"):
            payload = base64.b64decode(payload)
        self._send(response["statusCode"], headers, payload or b"")

    def _send_file(self, path: str) -> None:
        match = PUBLIC_FILES.match(path)
        target = self.server.files / match.group(1) if match else None
        if target is None or not target.is_file():
            return self._send_json(404, "not_found", "no such model file")
        # no-cache: a version's files may be rewritten (a conversion run again for the version; before reruns had model
        # versions of their own, a forced retrain wrote its model into the same folder)
        self._send(200, {"Content-Type": _FILE_TYPES.get(target.suffix, "application/octet-stream"), "Cache-Control": "no-cache"},
                   target.read_bytes())

    def _send_json(self, status: int, code: str, message: str, close: bool = False, extra: Headers | None = None) -> None:
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store", **(extra or {}),
                   **({"Connection": "close"} if close else {})}
        self.close_connection = self.close_connection or close
        self._send(status, headers, json.dumps({"error": {"code": code, "message": message}}))

    def _send(self, status: int, headers: Headers, body: str | bytes) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        if not any(name.lower() == "content-type" for name in headers):
            self.send_header("Content-Type", "application/json")
        secured: dict[str, str | list[str]] = dict(headers)
        security_headers.add(secured)  # the gateway's answers have them (app.py); the server's own get them here
        for name, value in secured.items():
            for one in value if isinstance(value, list) else [value]:
                self.send_header(name, one)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
