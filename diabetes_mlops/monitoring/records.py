"""The scoring log record: one JSON object per scoring request, one line each in the log store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pybase64

from diabetes_mlops.errors import MlopsError

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
# The datatype of a logged binary tensor, as the Open Inference Protocol names little-endian float64.
TENSOR_DATATYPE = "FP64"


@dataclass(frozen=True, slots=True)
class BinaryRows:
    """Rows that came as binary tensors, logged as the base64 of their little-endian doubles.

    Decimal text for 1,000 rows took the writer about 240 µs; base64 takes about 2 µs for twice the bytes
    of the diabetes data's short decimals, which the kernel copies in a fraction of that: a client that
    sends binary tensors for speed should not lose it to its own log.
    """

    matrix: np.ndarray


def scoring_record(
    request_id: str,
    time: str,
    model_name: str,
    model_version: int,
    inputs: np.ndarray | list[list[float]] | bytes | BinaryRows,
    predictions: np.ndarray | list[float],
    latency_ms: float,
    traceparent: str | None = None,
    synthetic: bool = False,
) -> dict[str, object]:
    """A scored request, as the log stores it.

    ``inputs`` are the rows in the order of ``data.FEATURES``: a matrix, lists, (bytes) their JSON text
    as sent, written as it is, or ``BinaryRows``, written as a tensor object
    (``{"datatype": "FP64", "shape": [n, 10], "base64": ...}``) that ``decode_record`` turns back into rows.
    ``synthetic`` marks smoke-test traffic: kept in the log, left out of drift.
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
    without Python lists, inputs that are JSON text (bytes) as they are, and ``BinaryRows`` as base64.

    Rows kept as the JSON text they were sent in (tens of kilobytes for a batch), or their base64, are one
    of the buffers as they are: formatted into the line, and the line joined into a piece, they would be
    copied twice with the GIL held, where ``os.writev`` hands them to the kernel without it.
    """
    inputs = record["inputs"]
    if isinstance(inputs, bytes):
        opening, text, closing = b"", inputs, b","
    elif isinstance(inputs, BinaryRows):
        matrix = inputs.matrix.astype("<f8", order="C", copy=False)
        opening = b'{"datatype":"%s","shape":[%d,%d],"base64":"' % (TENSOR_DATATYPE.encode(), *matrix.shape)
        text, closing = pybase64.b64encode(matrix.data), b'"},'
    else:
        return [orjson.dumps(record, option=_LINE)]
    keys = list(record)
    cut = keys.index("inputs")
    head = orjson.dumps({key: record[key] for key in keys[:cut]})
    tail = orjson.dumps({key: record[key] for key in keys[cut + 1 :]}, option=_LINE)
    # head is {...} and tail {...}\n: the line is head without its brace, the inputs, tail without its brace.
    return [head[:-1] + b',"inputs":' + opening, text, closing, memoryview(tail)[1:]]


def decode_record(line: bytes) -> dict[str, Any]:
    """A logged record from its JSON line, a binary tensor's rows decoded: every reader sees rows as lists."""
    record = orjson.loads(line)
    inputs = record.get("inputs")
    if type(inputs) is dict:
        record["inputs"] = _tensor_rows(inputs)
    return record


def _tensor_rows(tensor: dict[str, Any]) -> list[list[float]]:
    import numpy as np

    shape, data = tensor.get("shape"), tensor.get("base64")
    if (
        tensor.get("datatype") != TENSOR_DATATYPE
        or type(shape) is not list
        or len(shape) != 2
        or not all(type(n) is int and n >= 0 for n in shape)
        or type(data) is not str
    ):
        raise MlopsError("a scoring log record holds inputs that are neither rows nor an FP64 [rows, columns] tensor")
    try:
        raw = pybase64.b64decode(data, validate=True)
    except ValueError as exc:
        raise MlopsError(f"a scoring log record holds a tensor whose base64 is malformed ({exc})") from None
    if len(raw) != shape[0] * shape[1] * 8:
        raise MlopsError(f"a scoring log record holds a tensor of {len(raw)} bytes for a shape of {shape}")
    rows: list[list[float]] = np.frombuffer(raw, "<f8").reshape(shape).tolist()
    return rows


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
