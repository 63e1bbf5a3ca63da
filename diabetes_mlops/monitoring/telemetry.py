"""Application Insights through OpenTelemetry, only when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set.

Without the variable nothing is configured and nothing from ``azure`` or ``opentelemetry`` is imported, so
the local service pays nothing for it. With it, ``configure_azure_monitor`` sets up traces, metrics and logs
exporters. The distro instruments Django, FastAPI and Flask but not Starlette, so the ``Telemetry`` object it
returns wraps the app in OpenTelemetry's ASGI middleware: each HTTP request becomes a server span, which
Application Insights shows as a Request (``POST /score``, its result code, success and duration). The scorer
opens one ``score`` span inside it with the model version and row count, and records a latency histogram.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp

CONNECTION_STRING_ENV = "APPLICATIONINSIGHTS_CONNECTION_STRING"
TRACER_NAME = "diabetes_mlops.serving"
TELEMETRY_RETRY_DIR = "telemetry-retry"  # under the service's home: what Application Insights refused for now
# Probes and scrapes are no one's scoring requests: liveness and readiness probes (ours and the Open Inference
# Protocol's, every few seconds per replica on AKS, plus the image's HEALTHCHECK) and Prometheus would be most
# of the Request items, billed by volume, would flatten the request rate and failure charts, and would spend
# the distro's sampling budget of a few traces a second. /metrics counts them already. Regular expressions
# searched in the request's URL.
UNTRACED_URLS = ("/health", "/ready$", "/metrics$")


class Telemetry:
    """The tracer and instruments of a configured process; made by ``configure_telemetry`` only."""

    def __init__(self, tracer: Any, latency: Any, rows: Any) -> None:
        self._tracer = tracer
        self._latency = latency
        self._rows = rows

    @contextlib.contextmanager
    def span(self, model_name: str, model_version: int, rows: int) -> Iterator[None]:
        """One ``score`` span and its latency and row metrics."""
        attributes = {"model.name": model_name, "model.version": model_version, "scoring.rows": rows}
        start = time.perf_counter()
        with self._tracer.start_as_current_span("score", attributes=attributes):
            yield
        self._latency.record((time.perf_counter() - start) * 1000.0, {"model.version": model_version})
        self._rows.add(rows, {"model.version": model_version})

    def instrument(self, app: ASGIApp) -> ASGIApp:
        """``app`` with each HTTP request but the probes traced as a server span (an Application Insights Request)."""
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        # Without exclude_spans every request would also make a span per ASGI message it receives and sends:
        # three more items per request, each an InProc dependency in Application Insights, telling nothing.
        return OpenTelemetryMiddleware(app, excluded_urls=",".join(UNTRACED_URLS), exclude_spans=["receive", "send"])

    def flush(self, timeout_millis: int = 10_000) -> bool:
        """Export what is buffered now (at shutdown); True when it all went."""
        from opentelemetry import metrics, trace

        ok = True
        for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                ok = bool(flush(timeout_millis)) and ok
        return ok


def configure_telemetry(
    service_name: str, live_metrics: bool = False, retry_dir: Path | None = None
) -> Telemetry | None:
    """Send traces and metrics to Application Insights when the connection string is set; else None.

    Live metrics stream each request's details to a second endpoint: off unless the ``live_metrics`` setting
    asks for them. What Application Insights refuses for now (429, 503, or the items a 206 names as retriable)
    the exporter keeps in ``retry_dir`` and sends again later: by this process, or by the next one with the same
    directory (the service's home), so a restart loses none of it."""
    connection_string = os.environ.get(CONNECTION_STRING_ENV, "").strip()
    if not connection_string:
        return None
    return _configure(connection_string, service_name, live_metrics, str(retry_dir) if retry_dir else None)


@functools.cache  # OpenTelemetry's providers can be set once per process
def _configure(connection_string: str, service_name: str, live_metrics: bool, retry_dir: str | None) -> Telemetry:
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    configure_azure_monitor(
        connection_string=connection_string,
        resource=Resource.create({SERVICE_NAME: service_name}),
        enable_live_metrics=live_metrics,
        **({"storage_directory": retry_dir} if retry_dir else {}),
    )
    meter = metrics.get_meter(TRACER_NAME)
    return Telemetry(
        trace.get_tracer(TRACER_NAME),
        meter.create_histogram("scoring.latency", unit="ms", description="time to score one request"),
        meter.create_counter("scoring.rows", description="rows scored"),
    )
