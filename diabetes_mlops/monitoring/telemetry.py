"""Application Insights through OpenTelemetry, only when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set.

Without the variable nothing is configured and nothing from ``azure`` or ``opentelemetry`` is imported, so
the local service pays nothing for it. With it, ``configure_azure_monitor`` sets up traces, metrics and logs
exporters and the instrumentation of the web framework; ``scoring_span`` adds one span per scoring request
with the model version and row count, and a latency histogram.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

CONNECTION_STRING_ENV = "APPLICATIONINSIGHTS_CONNECTION_STRING"
TRACER_NAME = "diabetes_mlops.serving"

_state: dict[str, Any] = {}


def configure_telemetry(service_name: str) -> bool:
    """Send traces and metrics to Application Insights when the connection string is set; True if it did."""
    connection_string = os.environ.get(CONNECTION_STRING_ENV, "").strip()
    if not connection_string:
        return False
    if _state:
        return True  # OpenTelemetry's providers can be set once per process
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    # Live metrics would stream each request's details to a second endpoint: off unless asked for.
    configure_azure_monitor(
        connection_string=connection_string,
        resource=Resource.create({SERVICE_NAME: service_name}),
        enable_live_metrics=os.environ.get("DIABETES_MLOPS_LIVE_METRICS", "").lower() in ("1", "true", "yes"),
    )
    meter = metrics.get_meter(TRACER_NAME)
    _state.update(
        tracer=trace.get_tracer(TRACER_NAME),
        latency=meter.create_histogram("scoring.latency", unit="ms", description="time to score one request"),
        rows=meter.create_counter("scoring.rows", description="rows scored"),
    )
    return True


@contextlib.contextmanager
def scoring_span(model_name: str, model_version: int, rows: int) -> Iterator[None]:
    """One ``score`` span and its latency and row metrics; does nothing when telemetry is off."""
    if not _state:
        yield
        return
    attributes = {"model.name": model_name, "model.version": model_version, "scoring.rows": rows}
    start = time.perf_counter()
    with _state["tracer"].start_as_current_span("score", attributes=attributes):
        yield
    _state["latency"].record((time.perf_counter() - start) * 1000.0, {"model.version": model_version})
    _state["rows"].add(rows, {"model.version": model_version})


def flush_telemetry(timeout_millis: int = 10_000) -> bool:
    """Export what is buffered now (at shutdown); True when there was nothing to do or it all went."""
    if not _state:
        return True
    from opentelemetry import metrics, trace

    ok = True
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        flush = getattr(provider, "force_flush", None)
        if flush is not None:
            ok = bool(flush(timeout_millis)) and ok
    return ok
