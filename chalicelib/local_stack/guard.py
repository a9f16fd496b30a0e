"""Who may talk to `flowers up`, decided before any handler runs (local_stack/http.py).

1. The Host header. The server listens on 127.0.0.1 only, but a page on any domain that its DNS points at
   127.0.0.1 (DNS rebinding) reaches it as that domain: Origin and Host then agree, `Sec-Fetch-Site` says
   same-origin, and the cross-site check of the operator routes (api/operator_request.py) passes. A browser
   always sends the name it resolved, so only the loopback names, on the bound port, are answered; any other
   Host gets 421 (Misdirected Request) and nothing runs.
2. The operator token, for the operator routes (those whose operation in the OpenAPI document names
   `openapi.LOCAL_TOKEN` among its security schemes: every route that changes state, and operator data). It is
   a random secret kept in HOME/operator-token, mode 0600: the CLI of the same user reads it, another local user
   (or any program that can only reach the port) cannot. It travels as `Authorization: Bearer <token>` and is
   compared in constant time.
"""
from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Mapping

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
TOKEN_FILE = "operator-token"
_TOKEN_BYTES = 32


def host_allowed(host: str | None, port: int) -> bool:
    """True for a Host header naming this server: a loopback name with the bound port (without one on port 80, where
    clients leave it out). No Host at all is refused too: HTTP/1.1 requires it, and every browser sends it."""
    allowed = {f"{name}:{port}" for name in LOOPBACK_NAMES} | (set(LOOPBACK_NAMES) if port == 80 else set())
    return (host or "").strip().lower() in allowed


def bearer(headers: Mapping[str, str]) -> str:
    """The token of an `Authorization: Bearer <token>` header, or ''."""
    value = next((str(v) for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def token_matches(expected: str, headers: Mapping[str, str]) -> bool:
    """The request carries the home's token (compared in constant time; an empty expected token matches nothing)."""
    given = bearer(headers)
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def token_path(home: Path) -> Path:
    return Path(home) / TOKEN_FILE


def ensure_token(home: Path) -> str:
    """The home's token, created (0600, never readable by anyone else, not even for a moment) when it has none.
    A token file that others may read, or that another user owns, is replaced: it can no longer be trusted."""
    path = token_path(home)
    try:
        info = path.stat()
        if info.st_uid == os.getuid() and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            token = path.read_text().strip()
            if token:
                return token
        path.unlink()
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # 0600 at creation, whatever the umask
    with os.fdopen(descriptor, "w") as out:
        out.write(token + "\n")
    return token


def read_token(home: Path) -> str:
    """The home's token for a client (the CLI), or '' when there is none or it cannot be read."""
    try:
        return token_path(home).read_text().strip()
    except OSError:
        return ""
