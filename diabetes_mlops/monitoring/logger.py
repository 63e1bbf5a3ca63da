"""Scoring logs written off the request path: a queue, one writer thread, batched writes, a final flush."""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from diabetes_mlops.monitoring.store import LogSink

log = logging.getLogger(__name__)
BATCH_SIZE = 512
_STOP = object()


class ScoringLogger:
    """Accepts records from the event loop in O(1) and writes them in batches from a thread.

    ``close()`` drains the queue before it returns, so a graceful stop (SIGTERM) loses nothing.
    """

    def __init__(self, sink: LogSink) -> None:
        self.sink = sink
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="scoring-log-writer", daemon=True)
        self._thread.start()

    def log(
        self,
        request_id: str,
        time: str,
        model: tuple[str, int],
        inputs: np.ndarray,
        predictions: np.ndarray,
        latency_ms: float,
        traceparent: str | None,
    ) -> None:
        """Queue one record; the arrays are turned into lists in the writer thread, not here."""
        self._queue.put((request_id, time, model, inputs, predictions, latency_ms, traceparent))

    def _record(self, item: tuple) -> dict[str, object]:  # type: ignore[type-arg]
        request_id, time, (name, version), inputs, predictions, latency_ms, traceparent = item
        return {
            "request_id": request_id,
            "time": time,
            "model_name": name,
            "model_version": version,
            "inputs": inputs.tolist(),
            "predictions": predictions.tolist(),
            "latency_ms": latency_ms,
            "traceparent": traceparent,
        }

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch = [] if item is _STOP else [item]
            stopping = item is _STOP
            while len(batch) < BATCH_SIZE:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    continue
                batch.append(item)
            if batch:
                self._write([self._record(i) for i in batch])  # type: ignore[arg-type]
            if stopping and self._queue.empty():
                return

    def _write(self, records: list[dict[str, object]]) -> None:
        self._write_safely(lambda: self.sink.write(records))

    def _write_safely(self, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception:
            # A sink that fails must not take the service down; sinks that can lose records spool themselves.
            log.exception("the scoring log sink failed")

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, then stop the writer thread and flush what the sink spooled."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            self._write_safely(flush)
