"""Our ASGI scoring app: the routes, and nothing else. Parsing is in parsing.py, logging in monitoring/."""

from __future__ import annotations

import hmac
import itertools
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from diabetes_mlops.monitoring.telemetry import flush_telemetry, scoring_span
from diabetes_mlops.serving.metrics import ServiceMetrics
from diabetes_mlops.serving.openapi import openapi_spec
from diabetes_mlops.serving.parsing import InputError, parse_body

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from diabetes_mlops.monitoring.logger import ScoringLogger
    from diabetes_mlops.serving.model import ServedModel

JSON = "application/json"


@dataclass(frozen=True)
class ServiceConfig:
    """Limits and the optional key; the key is compared in constant time and never logged."""

    max_body_bytes: int = 1024 * 1024
    max_rows: int = 10_000
    key: str | None = None


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


def create_app(
    served: ServedModel, config: ServiceConfig, logger: ScoringLogger | None = None, telemetry: bool = False
) -> Starlette:
    """The scoring app for one loaded model; ``logger`` (when given) gets every scored request.

    With ``telemetry`` (Application Insights configured), each prediction runs in an OpenTelemetry span.
    """
    metrics = ServiceMetrics()
    identity = {"name": served.name, "version": served.version}
    model_key = (served.name, served.version)
    version_header = str(served.version)
    expected_auth = f"Bearer {config.key}".encode() if config.key else None
    predict = served.predict
    # Request ids made here: a random prefix per process and a counter, unique across processes and
    # about ten times cheaper than uuid4 (which reads the system's random source on every request).
    id_prefix, id_counter = secrets.token_hex(12), itertools.count()

    async def score(request: Request) -> Response:
        started = time.perf_counter()
        headers = request.headers
        request_id = headers.get("x-ms-request-id") or f"{id_prefix}{next(id_counter):08x}"
        traceparent = headers.get("traceparent")
        echo = {"x-ms-request-id": request_id, "x-model-version": version_header}
        if traceparent:
            echo["traceparent"] = traceparent
        if expected_auth is not None and not hmac.compare_digest(
            headers.get("authorization", "").encode(), expected_auth
        ):
            return metrics.count(error(401, "missing or invalid key: send Authorization: Bearer <key>", echo))
        content_type = headers.get("content-type", JSON).split(";")[0].strip().lower()
        if content_type != JSON:
            return metrics.count(error(415, f"content type {content_type!r}: send application/json", echo))
        try:
            parsed = parse_body(await read_body(request, config.max_body_bytes), config.max_rows)
        except InputError as exc:
            return metrics.count(error(exc.status, exc.message, echo))
        matrix = parsed.matrix
        if telemetry:
            with scoring_span(served.name, served.version, len(matrix)):
                predictions = predict(matrix)
        else:
            predictions = predict(matrix)
        body = orjson.dumps({"result": predictions, "model": identity}, option=orjson.OPT_SERIALIZE_NUMPY)
        latency = time.perf_counter() - started
        if logger is not None:
            inputs = matrix if parsed.rows_json is None else parsed.rows_json
            synthetic = "x-smoke-test" in headers
            logger.log(request_id, time.time(), model_key, inputs, predictions, latency * 1000, traceparent, synthetic)
        metrics.scored(len(predictions), latency)
        return metrics.count(Response(body, media_type=JSON, headers=echo))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": True, "model": identity})

    async def metrics_text(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_spec(config.key is not None))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    async def server_error(request: Request, exc: Exception) -> Response:
        return error(500, "internal error while scoring; the request id is in the X-Ms-Request-Id header")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if logger is not None:
            logger.close()
        flush_telemetry()

    return Starlette(
        routes=[
            Route("/score", score, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
