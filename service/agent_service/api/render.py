"""JSON responses rendered with orjson, for the hot endpoints.

A handler that returns a pydantic model has FastAPI dump it to a dict, validate that dict
against the response model again and serialize it: three passes over data the service built
itself. These handlers build plain dicts shaped like their (declared) response model and
render them once. Tests validate the bodies against the models, and schemathesis checks them
against the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

# UTC datetimes as "...Z", like pydantic renders them on the other endpoints.
_OPTIONS = orjson.OPT_UTC_Z


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload, option=_OPTIONS)


def json_response(
    payload: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        dumps(payload), status_code=status_code, headers=headers, media_type="application/json"
    )
