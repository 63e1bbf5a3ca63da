"""Scoring logs written off the request path: a queue, one writer thread, batched writes, a final flush."""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections import deque
from datetime import UTC, datetime
from time import monotonic
from typing import TYPE_CHECKING

from diabetes_mlops.config import DEFAULTS
from diabetes_mlops.monitoring.records import BinaryRows, EncodedRecord, Record, encoded, scoring_record

if TYPE_CHECKING:
    import numpy as np

    from diabetes_mlops.monitoring.sinks import LogSink

    # What the request path queues: request id, time, (model, version), inputs, predictions, latency,
    # traceparent, synthetic.
    _Pending = tuple[str, float, tuple[str, int], np.ndarray | bytes | BinaryRows, np.ndarray, float, str | None, bool]

log = logging.getLogger(__name__)
FLUSH_INTERVAL_SECONDS = 0.05
# Records of at most this many rows are formatted as they are logged, larger ones by the writer thread.
FORMAT_NOW_ROWS = 16
RETRY_INTERVAL_SECONDS = 1.0
REPORT_INTERVAL_SECONDS = 60.0


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
    """Takes records from the event loop (a few rows formatted at once, more left as they are) and writes
    them in batches from one thread.

    The writer wakes on a timer, not per record: waking a thread for each request would hand the GIL
    back and forth with the event loop and cost more than the logging itself. ``close()`` drains what
    is queued before it returns, so a graceful stop (SIGTERM) loses nothing.

    When the sink fails (a full disk), the records stay in memory, at most ``max_unwritten`` of them (the
    oldest are dropped first and counted in ``dropped``), and are written when the sink works again. The
    failure is said once a minute with the counts, without a traceback; ``failing`` tells readiness.

    Requests can come faster than any writer formats them (large batches, binary tensors): half of
    ``max_backlog_rows`` rows waiting starts the writer's turn before its timer, and more than all of them
    is ``backlogged``: the scorer then holds new work back until the writer catches up, so memory stays
    bounded and no answered request goes unlogged.
    """

    def __init__(
        self,
        sink: LogSink,
        flush_interval: float = FLUSH_INTERVAL_SECONDS,
        max_unwritten: int = DEFAULTS.scoring_log_buffer,
        report_interval: float = REPORT_INTERVAL_SECONDS,
        max_backlog_rows: int = DEFAULTS.scoring_log_backlog_rows,
    ) -> None:
        self.sink = sink
        self.flush_interval = flush_interval
        self.max_unwritten = max_unwritten
        self.report_interval = report_interval
        self.max_backlog_rows = max_backlog_rows
        # Each counter has one writer (the event loop queues, the writer thread takes): no lock needed.
        self._queued_rows = 0
        self._taken_rows = 0
        self.dropped = 0
        self.failing = False
        self._unwritten: list[Record] = []
        self._retry_at = 0.0
        self._reported_at = -math.inf
        self._pending: deque[_Pending | EncodedRecord] = deque()
        self._closed = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scoring-log-writer", daemon=True)
        self._thread.start()

    @property
    def backlogged(self) -> bool:
        """More rows wait for the writer than ``max_backlog_rows``."""
        return self._queued_rows - self._taken_rows > self.max_backlog_rows

    @property
    def unwritten(self) -> int:
        """Records kept in memory because the sink failed."""
        return len(self._unwritten)

    def log(
        self,
        request_id: str,
        time: float,
        model: tuple[str, int],
        inputs: np.ndarray | bytes | BinaryRows,
        predictions: np.ndarray,
        latency_ms: float,
        traceparent: str | None,
        synthetic: bool = False,
    ) -> None:
        """Queue one record: a few rows are formatted here, more by the writer thread.

        ``time`` comes from ``time.time()``; ``inputs`` is the matrix, the rows' JSON text as sent, or ``BinaryRows``.

        A single row takes a couple of microseconds to format, mostly the interpreter's. In the writer, a turn's
        thousands of them held the GIL for milliseconds, and whenever the operating system paused the writer
        in the middle, the event loop waited for the GIL the whole pause: single-row requests at concurrency
        32 on two workers had a p99 of 6 ms, 3 ms with the same work done here. A batch's record is left to
        the writer: formatting its predictions overlaps the event loop's socket calls, which release the GIL.
        """
        item = (request_id, time, model, inputs, predictions, latency_ms, traceparent, synthetic)
        self._pending.append(encoded(self._record(item)) if len(predictions) <= FORMAT_NOW_ROWS else item)
        self._queued_rows += len(predictions)
        if not self._wake.is_set() and self._queued_rows - self._taken_rows > self.max_backlog_rows // 2:
            # Half the backlog waits: the writer starts its turn now rather than at its timer, or requests
            # would wait for it at the bound, and one worker could score no more than the bound a turn.
            self._wake.set()

    @staticmethod
    def _record(item: _Pending) -> dict[str, object]:
        request_id, time, (name, version), inputs, predictions, latency_ms, traceparent, synthetic = item
        return scoring_record(
            request_id, _iso_utc(time), name, version, inputs, predictions, latency_ms, traceparent, synthetic
        )

    def _drain(self, final: bool = False) -> None:
        # One write per flush: each system call hands the GIL back and forth with the event loop, which
        # costs the service more than the serialisation itself.
        batch = [self._pending.popleft() for _ in range(len(self._pending))]
        self._taken_rows += sum(item.rows if isinstance(item, EncodedRecord) else len(item[4]) for item in batch)
        if not batch and not self._unwritten:
            return
        records = self._unwritten + [item if isinstance(item, EncodedRecord) else self._record(item) for item in batch]
        now = monotonic()
        if self.failing and now < self._retry_at and not final:
            # A failing sink is tried again once a second, not at every wake-up.
            self._keep(records, now, None)
            return
        try:
            self.sink.write(records)
        except Exception as exc:
            # A sink that fails must not take the service down: the records wait in memory.
            self._retry_at = now + RETRY_INTERVAL_SECONDS
            self._keep(records, now, exc)
            return
        if self.failing:
            log.warning("the scoring log is written again (%d records dropped while it failed)", self.dropped)
        self._unwritten, self.failing = [], False

    def _keep(self, records: list[Record], now: float, exc: Exception | None) -> None:
        overflow = len(records) - self.max_unwritten
        if overflow > 0:
            self.dropped += overflow
            records = records[overflow:]
        self._unwritten, self.failing = records, True
        if exc is not None and now - self._reported_at >= self.report_interval:
            self._reported_at = now
            log.error(
                "the scoring log cannot be written (%s: %s): %d records wait in memory, %d dropped so far",
                type(exc).__name__,
                exc,
                len(records),
                self.dropped,
            )

    def _run(self) -> None:
        # A sink that sends in batches (Blob) is told the time even when no request comes.
        send_due = getattr(self.sink, "send_due", None)
        while not self._closed.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._drain()
            if send_due is not None and not self.failing:
                send_due()
        self._drain(final=True)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, then stop the writer thread and flush what the sink spooled."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._unwritten:
            self.dropped += len(self._unwritten)
            log.error("the scoring log could not be written at shutdown: %d records lost", len(self._unwritten))
            self._unwritten = []
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            try:
                flush()
            except Exception as exc:
                log.error("the scoring log sink could not flush at shutdown (%s: %s)", type(exc).__name__, exc)
