"""Run the scoring app under uvicorn: one process, several (see workers.py), or on a listening socket handed over."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from diabetes_mlops.config import Settings
from diabetes_mlops.deploy.ports import listen

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

SWITCH_INTERVAL_SECONDS = 0.001


def build_app(settings: Settings, model_dir: Path) -> ASGIApp:
    """Load and verify the model in ``model_dir`` and build the app around its scorer, traced when telemetry is on."""
    from diabetes_mlops.monitoring.logger import ScoringLogger
    from diabetes_mlops.monitoring.sinks import open_log_sink
    from diabetes_mlops.monitoring.telemetry import TELEMETRY_RETRY_DIR, configure_telemetry
    from diabetes_mlops.serving.app import create_app
    from diabetes_mlops.serving.metrics import ServiceMetrics
    from diabetes_mlops.serving.model import ServedModel
    from diabetes_mlops.serving.scorer import Scorer, ServiceConfig

    served = ServedModel.from_dir(model_dir)
    logger = (
        ScoringLogger(
            open_log_sink(settings),
            max_unwritten=settings.scoring_log_buffer,
            max_backlog_rows=settings.scoring_log_backlog_rows,
        )
        if settings.scoring_log
        else None
    )
    config = ServiceConfig(
        settings.max_body_bytes,
        settings.max_rows,
        settings.scoring_key,
        settings.scoring_log_required,
        previous_key=settings.scoring_previous_key,
    )
    telemetry = configure_telemetry("diabetes-scoring", settings.live_metrics, settings.home / TELEMETRY_RETRY_DIR)
    app = create_app(Scorer(served, config, logger, telemetry, ServiceMetrics(logger)))
    # Outside the app, so the 500 that Starlette's outermost error handler answers is traced with its code.
    return app if telemetry is None else telemetry.instrument(app)


def _steady_latency() -> None:
    """Keep the event loop from stalling behind the garbage collector or the scoring log's writer thread.

    What startup made (modules, the model, the app) lives as long as the process: frozen out of the
    collector's sight, a full collection no longer walks it while requests wait. And a thread that holds
    the GIL gives it back to the event loop after 1 ms instead of Python's default 5 ms, the p99 a
    request waits behind the log writer's batch.
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


def serve(
    settings: Settings,
    model_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    fd: int | None = None,
    ready_file: Path | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; then finish in-flight requests and flush the scoring log.

    The port is bound before the model loads: a taken port is a PortInUse at once. ``on_ready`` gets the
    service's URL once it accepts connections.
    """
    if workers > 1 and fd is None:
        from diabetes_mlops.serving.workers import serve_workers

        serve_workers(settings, model_dir, host, port, workers, on_ready)
        return
    from diabetes_mlops.serving.protocol import CoalescingHttpToolsProtocol

    options: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "http": CoalescingHttpToolsProtocol,
    }
    listener = socket.socket(fileno=fd) if fd is not None else listen(host, port)
    url = "http://{}:{}".format(*listener.getsockname()[:2])
    app = _DrainingApp(build_app(settings, model_dir))
    _steady_latency()
    server = _ReadyFileServer(uvicorn.Config(app, **options))
    server.app = app
    server.ready_file = ready_file
    server.on_ready = None if on_ready is None else lambda: on_ready(url)
    server.run(sockets=[listener])


class _DrainingApp:
    """The app, whose answers say ``Connection: close`` once the server is draining."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.draining = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.draining:
            await self.app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)


class _ReadyFileServer(uvicorn.Server):
    """A uvicorn server that writes ``ready_file`` and calls ``on_ready`` once it accepts connections, and
    drains before it stops.

    Draining: on SIGTERM it stops accepting, then lets every open keep-alive connection take its next
    request, answered with ``Connection: close``, before closing it; a connection that stays idle closes
    when its keep-alive timeout would have closed it anyway. Closing an idle connection at once, as
    uvicorn does, fails the request a pooled client may be sending on it at that moment.
    """

    app: _DrainingApp
    ready_file: Path | None = None
    on_ready: Callable[[], None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.ready_file is not None:
            self.ready_file.write_text(str(os.getpid()))
        if self.started and self.on_ready is not None:
            self.on_ready()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.app.draining = True
        for server in self.servers:
            server.close()
        deadline = time.monotonic() + self.config.timeout_keep_alive + 1
        while self.server_state.connections and time.monotonic() < deadline and not self.force_exit:
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)
