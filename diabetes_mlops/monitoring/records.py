"""The scoring log record: one JSON object per scoring request, one line each in the log store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import numpy as np

# Rows formatted into one piece of a write: what is held formatted at once stays near a megabyte.
CHUNK_ROWS = 10_000
# Buffers in one piece: what one os.writev takes on Linux (IOV_MAX).
MAX_BUFFERS = 1024
# A piece of a JSON line: bytes, or a view of the end of bytes.
Buffer = bytes | memoryview
_LINE = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


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
        "inputs": inputs,
        "predictions": predictions,
        "latency_ms": latency_ms,
        "traceparent": traceparent,
        "synthetic": synthetic,
    }


def record_buffers(record: dict[str, object]) -> list[Buffer]:
    """One JSON line as buffers to write in order; numpy arrays in the record are written by orjson directly,
    without Python lists, and inputs that are JSON text (bytes) as they are.

    Rows kept as the JSON text they were sent in (tens of kilobytes for a batch) are one of the buffers
    as they are: formatted into the line, and the line joined into a piece, they would be copied twice
    with the GIL held, where ``os.writev`` hands them to the kernel without it.
    """
    inputs = record["inputs"]
    if not isinstance(inputs, bytes):
        return [orjson.dumps(record, option=_LINE)]
    keys = list(record)
    cut = keys.index("inputs")
    head = orjson.dumps({key: record[key] for key in keys[:cut]})
    tail = orjson.dumps({key: record[key] for key in keys[cut + 1 :]}, option=_LINE)
    # head is {...} and tail {...}\n: the line is head without its brace, the rows, tail without its brace.
    return [head[:-1] + b',"inputs":', inputs, b",", memoryview(tail)[1:]]


def encode_record(record: dict[str, object]) -> bytes:
    """One JSON line, as ``record_buffers`` writes it."""
    return b"".join(record_buffers(record))


def encoded_chunks(records: Iterable[dict[str, object]]) -> Iterator[list[Buffer]]:
    """The records as JSON lines, in pieces of about ``CHUNK_ROWS`` rows (a larger record alone) and at most
    ``MAX_BUFFERS`` buffers (one ``os.writev``)."""
    buffers: list[Buffer] = []
    rows = 0
    for record in records:
        line = record_buffers(record)
        if len(buffers) + len(line) > MAX_BUFFERS:
            yield buffers
            buffers, rows = [], 0
        buffers += line
        rows += len(record["predictions"])  # type: ignore[arg-type]
        if rows >= CHUNK_ROWS:
            yield buffers
            buffers, rows = [], 0
    if buffers:
        yield buffers
