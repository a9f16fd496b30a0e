"""What the pipeline refuses, raised by the Orchestrator's operator commands and the read model; the API
answers them as 404 and 409 (chalicelib/api/handlers.py)."""
from __future__ import annotations


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass
