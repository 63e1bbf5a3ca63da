"""What every route shares: the JSON error answer and a body read under the size limit."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from diabetes_mlops.serving.parsing import InputError

JSON = "application/json"


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Every error the service answers: a JSON body ``{"error": ...}`` that names the problem."""
    return Response(orjson.dumps({"error": message}), status_code=status, media_type=JSON, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InputError(f"body: {declared} bytes is more than the limit of {limit}", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputError(f"body: more than the limit of {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)
