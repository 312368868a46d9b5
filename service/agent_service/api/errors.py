"""Every failure becomes `{"error": {"code", "message"}}` with a fitting status; never a
traceback. Database and Redis outages are 503s, model failures 502/504."""

from __future__ import annotations

import logging
import math

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from ..core.errors import ServiceError
from ..core.models import ModelError
from ..storage.db import LOST_ERRORS, DatabaseUnavailable
from .schemas import ErrorResponse

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


class ApiError(Exception):
    """Raised by routers and dependencies for HTTP-level refusals (401, 429...)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _describe(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "invalid_json", "request body is not valid JSON"
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return 422, "validation_error", "; ".join(parts)


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    status, code, message = _describe(exc)
    return error_response(status, code, message)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = exc.headers
    if exc.status_code == 405:
        # Starlette names only the first route matching the path; a path served by several
        # routes (GET and DELETE /v1/sessions/{id}) must name every method it has.
        allowed = {
            method
            for pattern, methods in request.app.state.route_methods
            if pattern.fullmatch(request.url.path)
            for method in methods
        }
        headers = {**(headers or {}), "Allow": ", ".join(sorted(allowed))}
    return error_response(exc.status_code, code, message, headers)


async def _api(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _service(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    headers = None
    if exc.retry_after is not None:
        headers = {"Retry-After": str(math.ceil(exc.retry_after))}
    return error_response(exc.status, exc.code, exc.message, headers)


async def _model(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ModelError)
    log.warning("model call failed", extra={"error": str(exc)})
    return error_response(exc.status, exc.code, str(exc))


async def _database(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable", extra={"error": type(exc).__name__})
    return error_response(
        503, "database_unavailable", "the database is unavailable; retry", {"Retry-After": "5"}
    )


def _sqlstate(exc: BaseException) -> str:
    """The PostgreSQL SQLSTATE of a driver error, or of the one a DBAPIError wraps."""
    error: BaseException | None = exc.orig if isinstance(exc, DBAPIError) else exc
    while error is not None:
        if code := getattr(error, "sqlstate", None):
            return str(code)
        error = error.__cause__
    return ""


# SQLSTATE classes that say "the database cannot serve now": connection exception, insufficient
# resources, operator intervention (shutdown, restart, statement cancelled).
_UNAVAILABLE_CLASSES = {"08", "53", "57"}


def _connection_lost(exc: DBAPIError) -> bool:
    """Whether the driver error behind `exc` says the connection is unusable."""
    error: BaseException | None = exc.orig
    while error is not None:
        if isinstance(error, LOST_ERRORS):
            return True
        error = error.__cause__
    return False


def _database_down(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot serve now (rather than a bad statement)."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, DatabaseUnavailable)):
        return True
    if isinstance(exc, DBAPIError):
        return (
            exc.connection_invalidated
            or _sqlstate(exc)[:2] in _UNAVAILABLE_CLASSES
            or _connection_lost(exc)
        )
    return isinstance(exc, asyncpg.PostgresError) and _sqlstate(exc)[:2] in _UNAVAILABLE_CLASSES


def dependency_failure(exc: BaseException) -> tuple[str, str] | None:
    """(code, message) of the 503 a dependency outage behind `exc` is answered with; None for
    anything else. Also what a stream that already sent its headers ends with."""
    if _database_down(exc):
        return "database_unavailable", "the database is unavailable; retry"
    if isinstance(exc, RedisError):
        return "redis_unavailable", "redis is unavailable; retry"
    if isinstance(exc, OSError):
        return "dependency_unavailable", "a dependency is unreachable; retry"
    return None


async def _dbapi(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    sqlstate = _sqlstate(exc)
    if _database_down(exc):
        return await _database(request, exc)
    if sqlstate.startswith("22"):
        # Class 22, data exception: a value the database cannot store came from the client.
        return error_response(422, "invalid_value", "a value cannot be stored as given")
    log.error("database error", exc_info=exc)
    return error_response(500, "internal_error", "internal error")


async def _postgres(request: Request, exc: Exception) -> JSONResponse:
    """asyncpg errors from the hot path's statements (lost connections are already 503s)."""
    sqlstate = _sqlstate(exc)
    if sqlstate.startswith("22"):
        return error_response(422, "invalid_value", "a value cannot be stored as given")
    if _database_down(exc):
        return await _database(request, exc)
    log.error("database error", exc_info=exc)
    return error_response(500, "internal_error", "internal error")


async def _unreachable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("dependency unreachable", extra={"error": repr(exc)})
    return error_response(
        503, "dependency_unavailable", "a dependency is unreachable; retry", {"Retry-After": "5"}
    )


async def _redis(_: Request, exc: Exception) -> JSONResponse:
    log.warning("redis unavailable", extra={"error": type(exc).__name__})
    return error_response(
        503, "redis_unavailable", "redis is unavailable; retry", {"Retry-After": "5"}
    )


def install(app: FastAPI) -> None:
    """Register the handlers (unexpected exceptions are handled by the request middleware)."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(ApiError, _api)
    app.add_exception_handler(ServiceError, _service)
    app.add_exception_handler(ModelError, _model)
    # The most specific class wins, so connection-level failures map to 503.
    for db_error in (OperationalError, InterfaceError, PoolTimeout, DatabaseUnavailable):
        app.add_exception_handler(db_error, _database)
    app.add_exception_handler(DBAPIError, _dbapi)
    app.add_exception_handler(asyncpg.PostgresError, _postgres)
    app.add_exception_handler(RedisError, _redis)
    app.add_exception_handler(OSError, _unreachable)  # includes TimeoutError


# Declared on every route so the OpenAPI schema documents the error shape.
ERROR = {"model": ErrorResponse}
COMMON_ERRORS: dict[int | str, dict] = {
    401: {**ERROR, "description": "Missing or unknown API key"},
    429: {**ERROR, "description": "Rate limit exceeded (see Retry-After)"},
    500: {**ERROR, "description": "Unexpected error (no details are exposed)"},
    503: {**ERROR, "description": "A dependency is unavailable or the pod is shutting down"},
}
BODY_ERRORS: dict[int | str, dict] = {
    400: {**ERROR, "description": "Malformed JSON"},
    413: {**ERROR, "description": "Request body too large"},
    422: {**ERROR, "description": "Invalid request"},
}
