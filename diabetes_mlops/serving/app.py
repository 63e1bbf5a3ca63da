"""Our ASGI scoring app: the routes, and nothing else. Scoring is the Scorer's, parsing is in parsing.py."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from diabetes_mlops.serving.endpoints import InferEndpoint, ScoreEndpoint
from diabetes_mlops.serving.oip import oip_routes
from diabetes_mlops.serving.openapi import openapi_spec
from diabetes_mlops.serving.parsing import InputError
from diabetes_mlops.serving.responses import INTERNAL_ERROR, error

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.types import ASGIApp, Receive, Scope, Send

    from diabetes_mlops.serving.scorer import Scorer


class ScoringApp:
    """The app: a scoring POST to one of the served model's paths goes straight to its endpoint, anything else
    through Starlette, whose routes are all of them (404, 405, the OpenAPI document).

    Starlette's middleware, router and exception wrappers would cost a single-row request a tenth of its time.
    """

    def __init__(self, app: Starlette, fast: dict[str, tuple[ASGIApp, dict[str, str]]]) -> None:
        self.app = app
        self._fast = fast

    @property
    def routes(self) -> list[BaseRoute]:
        """Every route of the app, the fast ones included: Starlette's table."""
        return self.app.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self._fast.get(scope["path"])
            if route is not None:
                endpoint, scope["path_params"] = route
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(scorer: Scorer) -> ScoringApp:
    """The scoring app around ``scorer`` (which must have metrics): ``/score``, ``/v2`` (OIP), health."""
    config, metrics = scorer.config, scorer.metrics
    if metrics is None:
        raise ValueError("the app counts requests: give the scorer a ServiceMetrics")
    score, infer = ScoreEndpoint(scorer, metrics), InferEndpoint(scorer, metrics)
    name, version = scorer.served.name, str(scorer.served.version)
    fast: dict[str, tuple[ASGIApp, dict[str, str]]] = {
        "/score": (score, {}),
        f"/v2/models/{name}/infer": (infer, {"name": name}),
        f"/v2/models/{name}/versions/{version}/infer": (infer, {"name": name, "version": version}),
    }

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def ready(request: Request) -> Response:
        reason = scorer.ready()
        if reason is not None:
            return error(503, reason)
        return JSONResponse({"ready": True, "model": scorer.identity})

    def refused(request: Request) -> Response | None:
        """A 401 unless the request carries the key: with one set, only probes are answered without it."""
        try:
            scorer.authorize(request.headers)
        except InputError as exc:
            return error(exc.status, exc.message)
        return None

    async def metrics_text(request: Request) -> Response:
        return refused(request) or Response(metrics.exposition(), media_type=metrics.content_type)

    async def openapi(request: Request) -> Response:
        return refused(request) or JSONResponse(openapi_spec(config.key is not None))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    async def server_error(request: Request, exc: Exception) -> Response:
        return error(500, INTERNAL_ERROR)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        scorer.close()

    starlette = Starlette(
        routes=[
            Route("/score", score, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *oip_routes(scorer, infer),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    return ScoringApp(starlette, fast)
