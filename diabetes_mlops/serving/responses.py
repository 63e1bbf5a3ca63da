"""What every route shares: the JSON error answer."""

from __future__ import annotations

import orjson
from starlette.responses import Response

JSON = "application/json"
INTERNAL_ERROR = "internal error while scoring; the request id is in the X-Ms-Request-Id header"


def error_body(message: str) -> bytes:
    """Every error's body: ``{"error": ...}``, naming the problem."""
    return orjson.dumps({"error": message})


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Every error the service answers: a JSON body ``{"error": ...}`` that names the problem."""
    return Response(error_body(message), status_code=status, media_type=JSON, headers=headers)
