"""Scoring logs written off the request path: a queue, one writer thread, batched writes, a final flush."""

from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from diabetes_mlops.monitoring.records import scoring_record

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from diabetes_mlops.monitoring.store import LogSink

log = logging.getLogger(__name__)
FLUSH_INTERVAL_SECONDS = 0.05


@functools.lru_cache(maxsize=4)
def _second_prefix(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _iso_utc(timestamp: float) -> str:
    """``datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")``, at a third of the cost.

    Thousands of records a second share a handful of seconds, so the date and time are made once per
    second and only the microseconds per record.
    """
    second = int(timestamp)
    micros = round((timestamp - second) * 1e6)
    if micros == 1_000_000:
        second, micros = second + 1, 0
    return f"{_second_prefix(second)}.{micros:06d}+00:00"


class ScoringLogger:
    """Takes records from the event loop in O(1) and writes them in batches from one thread.

    The writer wakes on a timer, not per record: waking a thread for each request would hand the GIL
    back and forth with the event loop and cost more than the logging itself. ``close()`` drains what
    is queued before it returns, so a graceful stop (SIGTERM) loses nothing.
    """

    def __init__(self, sink: LogSink, flush_interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        self.sink = sink
        self.flush_interval = flush_interval
        self._pending: deque[tuple] = deque()  # type: ignore[type-arg]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scoring-log-writer", daemon=True)
        self._thread.start()

    def log(
        self,
        request_id: str,
        time: float,
        model: tuple[str, int],
        inputs: np.ndarray | bytes,
        predictions: np.ndarray,
        latency_ms: float,
        traceparent: str | None,
        synthetic: bool = False,
    ) -> None:
        """Queue one record; it is formatted in the writer thread, not here.

        ``time`` comes from ``time.time()``; ``inputs`` is the matrix, or the rows' JSON text as sent.
        """
        self._pending.append((request_id, time, model, inputs, predictions, latency_ms, traceparent, synthetic))

    @staticmethod
    def _record(item: tuple) -> dict[str, object]:  # type: ignore[type-arg]
        request_id, time, (name, version), inputs, predictions, latency_ms, traceparent, synthetic = item
        return scoring_record(
            request_id, _iso_utc(time), name, version, inputs, predictions, latency_ms, traceparent, synthetic
        )

    def _drain(self) -> None:
        # One write per flush: each system call hands the GIL back and forth with the event loop, which
        # costs the service more than the serialisation itself.
        batch = [self._pending.popleft() for _ in range(len(self._pending))]
        if batch:
            self._write_safely(lambda: self.sink.write([self._record(item) for item in batch]))

    def _run(self) -> None:
        while not self._closed.wait(self.flush_interval):
            self._drain()
        self._drain()

    def _write_safely(self, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception:
            # A sink that fails must not take the service down; sinks that can lose records spool themselves.
            log.exception("the scoring log sink failed")

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, then stop the writer thread and flush what the sink spooled."""
        self._closed.set()
        self._thread.join(timeout)
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            self._write_safely(flush)
