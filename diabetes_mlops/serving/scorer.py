"""The scoring handler apart from the web app: one object that every protocol (``/score``, the Open Inference
Protocol, Azure ML's entry script) calls with a parsed matrix.

A protocol's route reads as a straight line: ``begin`` (request id, trace context), ``authorize``, ``admit``, parse
its own input form into a float64 matrix, ``score`` (predict, log without waiting, count), then format its
own answer. Nothing here knows HTTP beyond header names, so it is tested without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from diabetes_mlops.config import DEFAULTS
from diabetes_mlops.serving.parsing import InputError

if TYPE_CHECKING:
    import numpy as np

    from diabetes_mlops.monitoring.logger import ScoringLogger
    from diabetes_mlops.monitoring.records import BinaryRows
    from diabetes_mlops.monitoring.telemetry import Telemetry
    from diabetes_mlops.serving.metrics import ServiceMetrics
    from diabetes_mlops.serving.model import ServedModel

# How long a request waits for a scoring log that is behind, and how often it looks: the writer takes its
# queue every 50 ms, so a second is many turns, and a look costs the event loop a few microseconds.
ADMIT_WAIT_SECONDS = 1.0
ADMIT_POLL_SECONDS = 0.005


@dataclass(frozen=True)
class ServiceConfig:
    """Limits, the optional key, whether readiness needs the scoring log to be written, and how long a request
    waits for a scoring log that is behind before it is refused.

    ``previous_key`` is accepted too while a key rotation rolls out, so a client still sending it loses
    nothing. Keys are compared in constant time and never logged.
    """

    max_body_bytes: int = DEFAULTS.max_body_bytes
    max_rows: int = DEFAULTS.max_rows
    key: str | None = None
    log_required: bool = DEFAULTS.scoring_log_required
    admit_wait: float = ADMIT_WAIT_SECONDS
    previous_key: str | None = None

    def __post_init__(self) -> None:
        if self.previous_key and not self.key:
            raise ValueError("a previous key is accepted only beside the current one")


@dataclass(slots=True)
class Call:
    """One scoring request as the scorer sees it: ids, trace context and the headers to echo."""

    request_id: str
    traceparent: str | None
    synthetic: bool
    started: float
    echo: dict[str, str]


class Scorer:
    """Authorize, predict, log and count for one loaded model; the same for every protocol.

    ``metrics`` (Prometheus) are our ASGI app's; Azure ML's inference server, which runs the entry script,
    counts requests itself.
    """

    def __init__(
        self,
        served: ServedModel,
        config: ServiceConfig,
        logger: ScoringLogger | None = None,
        telemetry: Telemetry | None = None,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.served = served
        self.config = config
        self.logger = logger
        self.telemetry = telemetry
        self.metrics = metrics
        self.identity = {"name": served.name, "version": served.version}
        self._model_key = (served.name, served.version)
        self._version_header = str(served.version)
        self._accepted_auth = tuple(f"Bearer {key}".encode() for key in (config.key, config.previous_key) if key)
        # Request ids made here: a random prefix per process and a counter, unique across processes and
        # about ten times cheaper than uuid4 (which reads the system's random source on every request).
        self._id_prefix, self._id_counter = secrets.token_hex(12), itertools.count()
        self._log_watch: asyncio.Future[None] | None = None

    def begin(self, headers: Mapping[str, str]) -> Call:
        """The request's id (the caller's ``X-Ms-Request-Id`` or a new one) and the headers to echo."""
        request_id = headers.get("x-ms-request-id") or f"{self._id_prefix}{next(self._id_counter):08x}"
        traceparent = headers.get("traceparent")
        echo = {"x-ms-request-id": request_id, "x-model-version": self._version_header}
        if traceparent:
            echo["traceparent"] = traceparent
        return Call(request_id, traceparent, "x-smoke-test" in headers, time.perf_counter(), echo)

    def authorize(self, headers: Mapping[str, str]) -> None:
        """Raise a 401 InputError unless a configured key (if any) is sent as a bearer token."""
        sent = headers.get("authorization", "").encode()
        # Every key is compared, so the time taken tells nothing of which one (if any) came close.
        if self._accepted_auth and not any([hmac.compare_digest(sent, key) for key in self._accepted_auth]):
            raise InputError("missing or invalid key: send Authorization: Bearer <key>", status=401)

    async def admit(self) -> None:
        """Wait while the scoring log is behind, up to ``admit_wait`` seconds, then raise a 503 InputError.

        Called before the body is read: a waiting request holds no parsed rows, and its body stays in the
        connection's buffers. Waiting rather than refusing at once is backpressure: a 503 answered in
        microseconds invites the next request at once, and that churn takes the CPU the writer needs to
        catch up. Only a writer stuck for the whole wait (a store that does not answer) turns clients away.
        """
        if self.logger is None or not self.logger.backlogged:
            return
        deadline = time.monotonic() + self.config.admit_wait
        while self.logger.backlogged:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # Retrying clients and proxies wait a second, the writer's next turns.
                raise InputError("the scoring log is behind: retry in a moment", status=503, retry_after=1)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._log_caught_up()), remaining)

    def _log_caught_up(self) -> asyncio.Future[None]:
        """Done once the scoring log is no longer behind.

        One task looks every 5 ms for all the waiting requests: a look each would cost the event loop in
        proportion to the connections waiting, hundreds behind a load balancer, and starve the writer.
        """
        if self._log_watch is None or self._log_watch.done():
            self._log_watch = asyncio.ensure_future(self._watch_log())
        return self._log_watch

    async def _watch_log(self) -> None:
        while self.logger is not None and self.logger.backlogged:
            await asyncio.sleep(ADMIT_POLL_SECONDS)

    def score(self, matrix: np.ndarray, call: Call, logged_as: bytes | BinaryRows | None = None) -> np.ndarray:
        """Predictions for a validated (n, 10) float64 matrix; the request is logged and counted.

        ``logged_as`` is what the log keeps instead of the matrix: the rows' JSON text as sent, or
        ``BinaryRows`` for rows that came as binary tensors.
        """
        if self.telemetry is not None:
            with self.telemetry.span(self.served.name, self.served.version, len(matrix)):
                predictions = self.served.predict(matrix)
        else:
            predictions = self.served.predict(matrix)
        latency = time.perf_counter() - call.started
        if self.logger is not None:
            self.logger.log(
                call.request_id,
                time.time(),
                self._model_key,
                matrix if logged_as is None else logged_as,
                predictions,
                latency * 1000,
                call.traceparent,
                call.synthetic,
            )
        if self.metrics is not None:
            self.metrics.scored(len(predictions), latency)
        return predictions

    def ready(self) -> str | None:
        """None when the service may take traffic, else why not."""
        if self.config.log_required and self.logger is not None and self.logger.failing:
            return "the scoring log cannot be written and every record must be kept (scoring_log_required)"
        return None

    def close(self) -> None:
        """Write what the log holds and export buffered telemetry: a graceful stop loses nothing."""
        if self.logger is not None:
            self.logger.close()
        if self.telemetry is not None:
            self.telemetry.flush()
