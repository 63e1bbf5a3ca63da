"""The scoring log record: one JSON object per scoring request, one line each in the log store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import numpy as np

# Rows formatted into one piece of a write: what is held formatted at once stays near a megabyte.
CHUNK_ROWS = 10_000


def scoring_record(
    request_id: str,
    time: str,
    model_name: str,
    model_version: int,
    inputs: np.ndarray | list[list[float]] | bytes,
    predictions: np.ndarray | list[float],
    latency_ms: float,
    traceparent: str | None = None,
    synthetic: bool = False,
) -> dict[str, object]:
    """A scored request, as the log stores it.

    ``inputs`` are the rows in the order of ``data.FEATURES``: a matrix, lists, or (bytes) their JSON text
    as sent, written as it is. ``synthetic`` marks smoke-test traffic: kept in the log, left out of drift.
    """
    return {
        "request_id": request_id,
        "time": time,
        "model_name": model_name,
        "model_version": model_version,
        "inputs": orjson.Fragment(inputs) if isinstance(inputs, bytes) else inputs,
        "predictions": predictions,
        "latency_ms": latency_ms,
        "traceparent": traceparent,
        "synthetic": synthetic,
    }


def encode_record(record: dict[str, object]) -> bytes:
    """One JSON line; numpy arrays in the record are written by orjson directly, without Python lists."""
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)


def encoded_chunks(records: Iterable[dict[str, object]]) -> Iterator[bytes]:
    """The records as JSON lines, joined into pieces of about ``CHUNK_ROWS`` rows (a larger record alone)."""
    lines: list[bytes] = []
    rows = 0
    for record in records:
        lines.append(encode_record(record))
        rows += len(record["predictions"])  # type: ignore[arg-type]
        if rows >= CHUNK_ROWS:
            yield b"".join(lines)
            lines, rows = [], 0
    if lines:
        yield b"".join(lines)
