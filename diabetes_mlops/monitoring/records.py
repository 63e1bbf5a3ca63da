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
# Inputs kept as text up to this size are copied into their line, larger ones written as buffers of their own.
INLINE_BYTES = 4096
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


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """A record already formatted: its time (for the day or hour it is filed under), rows, and JSON line
    as the buffers ``record_buffers`` made."""

    time: str
    rows: int
    buffers: list[Buffer]


# What the stores write: records, or records already formatted.
Record = dict[str, object] | EncodedRecord


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

    Large inputs kept as text (the JSON a batch was sent in, tens of kilobytes, or their base64) are one of
    the buffers as they are: formatted into the line, and the line joined into a piece, they would be
    copied twice with the GIL held, where ``os.writev`` hands them to the kernel without it. Small ones go
    into the line in one orjson call: for a single row, the two calls that cut the line around its inputs
    cost four times the copy they save, with the GIL held while requests wait for it.
    """
    inputs = record["inputs"]
    if isinstance(inputs, bytes):
        opening, text, closing = b"", inputs, b""
    elif isinstance(inputs, BinaryRows):
        matrix = inputs.matrix.astype("<f8", order="C", copy=False)
        opening = b'{"datatype":"%s","shape":[%d,%d],"base64":"' % (TENSOR_DATATYPE.encode(), *matrix.shape)
        text, closing = pybase64.b64encode(matrix.data), b'"}'
    else:
        return [orjson.dumps(record, option=_LINE, default=_array_list)]
    if len(text) < INLINE_BYTES:
        inline = {**record, "inputs": orjson.Fragment(opening + text + closing)}
        return [orjson.dumps(inline, option=_LINE, default=_array_list)]
    keys = list(record)
    cut = keys.index("inputs")
    head = orjson.dumps({key: record[key] for key in keys[:cut]})
    tail = orjson.dumps({key: record[key] for key in keys[cut + 1 :]}, option=_LINE, default=_array_list)
    # head is {...} and tail {...}\n: the line is head without its brace, the inputs, tail without its brace.
    return [head[:-1] + b',"inputs":' + opening, text, closing + b",", memoryview(tail)[1:]]


def _array_list(value: object) -> object:
    """An array orjson does not write itself (not C-ordered, an unusual dtype) as lists.

    Without it, one such array failed the write of every batch it was retried in: the log kept nothing
    more. A ``/score`` body whose columns came out of order once made such a matrix.
    """
    tolist = getattr(value, "tolist", None)
    if tolist is None:
        raise TypeError(f"{type(value).__name__} is not JSON")
    return tolist()


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


def encoded(record: dict[str, object]) -> EncodedRecord:
    """The record formatted now."""
    return EncodedRecord(str(record["time"]), len(record["predictions"]), record_buffers(record))  # type: ignore[arg-type]


def record_time(record: Record) -> str:
    """When the record was scored, as an ISO 8601 text in UTC."""
    return record.time if isinstance(record, EncodedRecord) else str(record["time"])


def encoded_chunks(records: Iterable[Record]) -> Iterator[list[Buffer]]:
    """The records as JSON lines, in pieces of about ``CHUNK_ROWS`` rows (a larger record alone) and at most
    ``MAX_BUFFERS`` buffers (one ``os.writev``)."""
    buffers: list[Buffer] = []
    rows = 0
    for record in records:
        line = record if isinstance(record, EncodedRecord) else encoded(record)
        if len(buffers) + len(line.buffers) > MAX_BUFFERS:
            yield buffers
            buffers, rows = [], 0
        buffers += line.buffers
        rows += line.rows
        if rows >= CHUNK_ROWS:
            yield buffers
            buffers, rows = [], 0
    if buffers:
        yield buffers
