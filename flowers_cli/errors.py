"""How the CLI fails: one line on stderr, exit 2 for a usage mistake, 1 for everything else.

`UsageError` is a mistake in what was asked (a bad flag value, a home that does not exist);
`describe` says in one line what went wrong at run time, for the errors people meet (no
server, no AWS credentials, a file that cannot be read) and, for the rest, the error's kind
and message rather than a traceback (FLOWERS_DEBUG=1 shows the traceback).
"""
from __future__ import annotations

import socket
import urllib.error

USAGE = 2
RUNTIME = 1


class UsageError(Exception):
    """What was asked cannot be done as asked: exit 2, like argparse's own errors."""


def describe(exc: BaseException, url: str = "") -> str:
    where = f" {url}" if url else ""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return f"cannot reach the API{where}: {exc.reason} (is the server running? --url or $FLOWERS_URL says where it is)"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"the API{where} did not answer in time"
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError", "NoRegionError"):  # botocore, imported only when used
        return f"AWS: {exc} (configure credentials: aws configure, AWS_PROFILE or the AWS_* variables)"
    if name in ("ClientError", "EndpointConnectionError", "BotoCoreError") or type(exc).__module__.startswith("botocore"):
        return f"AWS: {exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc.strerror)
    return f"{name}: {exc}" if str(exc) else name
