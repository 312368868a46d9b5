"""Errors the services raise; the API turns each into `{"error": {"code", "message"}}`."""

from __future__ import annotations


class ServiceError(Exception):
    """An expected failure with its HTTP status, a stable code and a message for the client."""

    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.retry_after = retry_after


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Unavailable(ServiceError):
    status = 503
    code = "unavailable"


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"
