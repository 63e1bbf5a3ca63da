"""Our ASGI scoring app: the routes, and nothing else. Scoring is the Scorer's, parsing is in parsing.py."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from diabetes_mlops.serving.endpoints import ScoreEndpoint
from diabetes_mlops.serving.oip import oip_routes
from diabetes_mlops.serving.openapi import openapi_spec
from diabetes_mlops.serving.responses import error

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from diabetes_mlops.serving.scorer import Scorer


def create_app(scorer: Scorer) -> Starlette:
    """The scoring app around ``scorer`` (which must have metrics): ``/score``, ``/v2`` (OIP), health."""
    config, metrics = scorer.config, scorer.metrics
    if metrics is None:
        raise ValueError("the app counts requests: give the scorer a ServiceMetrics")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def ready(request: Request) -> Response:
        reason = scorer.ready()
        if reason is not None:
            return error(503, reason)
        return JSONResponse({"ready": True, "model": scorer.identity})

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
        scorer.close()

    return Starlette(
        routes=[
            Route("/score", ScoreEndpoint(scorer, metrics), methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *oip_routes(scorer, metrics),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
