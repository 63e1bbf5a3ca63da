"""Prometheus metrics of one service: requests by status, latency, rows scored."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

if TYPE_CHECKING:
    from starlette.responses import Response

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class ServiceMetrics:
    """A registry of its own per app, so two apps in one process never share counts."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "scoring_requests", "Scoring requests answered, by HTTP status.", ["status"], registry=self.registry
        )
        self.latency = Histogram(
            "scoring_latency_seconds",
            "Time to answer a scored request.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter("scoring_rows", "Rows scored.", registry=self.registry)
        self._by_status: dict[int, Counter] = {}

    def count(self, response: Response) -> Response:
        """Count ``response`` under its status and hand it back."""
        counter = self._by_status.get(response.status_code)
        if counter is None:
            counter = self._by_status[response.status_code] = self.requests.labels(str(response.status_code))
        counter.inc()
        return response

    def scored(self, rows: int, seconds: float) -> None:
        self.rows.inc(rows)
        self.latency.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
