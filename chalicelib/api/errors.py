"""HTTP errors as the API promises them: JSON `{"error": {"code", "message"}}` and a status."""
from __future__ import annotations


class ApiError(Exception):
    status = 400

    def __init__(self, code: str, message: str, status: int | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(code, message, 400)


def too_large(message: str) -> ApiError:
    return ApiError("too_large", message, 413)


def unsupported(message: str) -> ApiError:
    return ApiError("unsupported_media_type", message, 415)


def not_found(message: str) -> ApiError:
    return ApiError("not_found", message, 404)


def conflict(message: str) -> ApiError:
    return ApiError("conflict", message, 409)


def unavailable(message: str, retry_after: int) -> ApiError:
    return ApiError("no_model", message, 503, {"Retry-After": str(int(retry_after))})
