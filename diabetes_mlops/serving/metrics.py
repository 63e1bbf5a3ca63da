"""Prometheus metrics of one service: requests by status, latency, rows scored, scoring-log losses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from diabetes_mlops.monitoring.logger import ScoringLogger

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class _LogCollector:
    """The scoring log's dropped and waiting records, read from the logger at each scrape."""

    def __init__(self, logger: ScoringLogger) -> None:
        self.logger = logger

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "scoring_log_dropped_records", "Scoring records lost: the log could not be written.", self.logger.dropped
        )
        yield GaugeMetricFamily(
            "scoring_log_unwritten_records", "Scoring records waiting in memory for the log.", self.logger.unwritten
        )


class ServiceMetrics:
    """A registry of its own per app, so two apps in one process never share counts."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, logger: ScoringLogger | None = None) -> None:
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
        if logger is not None:
            self.registry.register(_LogCollector(logger))

    def count(self, status: int) -> None:
        """Count one scoring answer under its HTTP status."""
        counter = self._by_status.get(status)
        if counter is None:
            counter = self._by_status[status] = self.requests.labels(str(status))
        counter.inc()

    def scored(self, rows: int, seconds: float) -> None:
        self.rows.inc(rows)
        self.latency.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
