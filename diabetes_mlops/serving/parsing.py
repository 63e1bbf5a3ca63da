"""Scoring input: three JSON shapes in, one float64 matrix out, or an InputError that says what and where."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain
from typing import Any, cast

import numpy as np
import orjson
import simdjson

from diabetes_mlops.data import FEATURES

N_FEATURES = len(FEATURES)
_NUMBER = (int, float)
_NUMBER_TYPES = frozenset(_NUMBER)
# JSON's blanks, and what JSON numbers and the blanks between them are made of.
_BLANKS = b" \t\r\n"
_NUMBER_CHARACTERS = b"0123456789.-+eE" + _BLANKS


class InputError(Exception):
    """Bad scoring input; ``status`` is the HTTP status to answer with, the message names the problem, and
    ``retry_after`` (seconds) says when a refusal that is not the request's fault may be retried."""

    def __init__(self, message: str, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _check_value(value: object, row: int, column: str) -> None:
    if type(value) not in _NUMBER:
        raise InputError(f"row {row}, column {column!r}: expected a number, got {_describe(value)}")
    try:
        finite = math.isfinite(value)  # type: ignore[arg-type]
    except OverflowError:  # an int beyond float64, which the message's number format cannot show either
        raise InputError(f"row {row}, column {column!r}: expected a finite number, got an int beyond float64") from None
    if not finite:
        raise InputError(f"row {row}, column {column!r}: expected a finite number, got {value:.6g}")


def _rows_matrix(rows: list[Any], order: list[int] | None = None) -> np.ndarray:
    """Rows of numbers (in ``order`` of FEATURES when given) as an (n, 10) float64 matrix.

    Whole-list checks first; only bad rows take the slow path that finds and names the first offending
    row and value.
    """
    if set(map(type, rows)) != {list} or set(map(len, rows)) != {N_FEATURES}:
        _locate_shape_error(rows)
    values = chain.from_iterable(rows)
    if not set(map(type, values)) <= _NUMBER_TYPES:
        _locate_value_error(rows, order)
    try:
        flat = np.fromiter(chain.from_iterable(rows), np.float64, count=len(rows) * N_FEATURES)
    except (TypeError, ValueError, OverflowError):
        _locate_value_error(rows, order)
        raise
    matrix = flat.reshape(len(rows), N_FEATURES)
    require_finite(matrix, order)
    if order is not None:
        matrix = matrix[:, np.argsort(order)]
    return matrix


def require_finite(matrix: np.ndarray, order: list[int] | None = None) -> None:
    """Raise an InputError naming the first row and column of ``matrix`` that is NaN or infinite."""
    if not np.isfinite(matrix).all():
        i, j = (int(k) for k in np.argwhere(~np.isfinite(matrix))[0])
        raise InputError(f"row {i}, column {_name(j, order)!r}: expected a finite number, got {matrix[i, j]}")


def flat_matrix(values: list[Any], n_rows: int) -> np.ndarray:
    """The (n_rows, 10) float64 matrix of a row-major flat list of numbers."""
    if len(values) != n_rows * N_FEATURES:
        raise InputError(f"data: {len(values)} values for {n_rows} rows of {N_FEATURES}")
    if not set(map(type, values)) <= _NUMBER_TYPES:
        for k, value in enumerate(values):
            _check_value(value, k // N_FEATURES, FEATURES[k % N_FEATURES])
    try:
        matrix = np.fromiter(values, np.float64, count=len(values)).reshape(n_rows, N_FEATURES)
    except OverflowError:
        raise InputError("data: a value is too large for a float64") from None
    require_finite(matrix)
    return matrix


def rows_matrix(rows: list[Any]) -> np.ndarray:
    """The (n, 10) float64 matrix of a list of rows of 10 numbers, or an InputError naming the bad value."""
    return _rows_matrix(rows)


def _name(position: int, order: list[int] | None) -> str:
    return FEATURES[order[position]] if order else FEATURES[position]


def _locate_shape_error(rows: list[Any]) -> None:
    for i, row in enumerate(rows):
        if type(row) is not list:
            raise InputError(f"row {i}: expected a list of {N_FEATURES} numbers, got {_describe(row)}")
        if len(row) != N_FEATURES:
            raise InputError(f"row {i}: expected {N_FEATURES} values, got {len(row)}")


def _locate_value_error(rows: list[Any], order: list[int] | None) -> None:
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            _check_value(value, i, _name(j, order))


def _records_matrix(records: list[Any]) -> np.ndarray:
    matrix = np.empty((len(records), N_FEATURES), dtype=np.float64)
    expected = set(FEATURES)
    for i, record in enumerate(records):
        if type(record) is not dict:
            raise InputError(f"row {i}: expected an object with the columns {', '.join(FEATURES)}")
        if record.keys() != expected:
            unknown = sorted(set(record) - expected)
            if unknown:
                raise InputError(f"row {i}: unknown column {unknown[0]!r}")
            missing = [c for c in FEATURES if c not in record]
            raise InputError(f"row {i}: missing column {missing[0]!r}")
        for j, column in enumerate(FEATURES):
            value = record[column]
            _check_value(value, i, column)
            matrix[i, j] = value
    return matrix


def _column_order(columns: object) -> list[int]:
    """Positions in FEATURES of the v2 ``columns`` list; every feature exactly once."""
    if type(columns) is not list or not all(isinstance(c, str) for c in columns):
        raise InputError("input_data.columns: expected a list of column names")
    for column in columns:
        if column not in FEATURES:
            raise InputError(f"input_data.columns: unknown column {column!r}")
    if len(set(columns)) != len(columns):
        raise InputError("input_data.columns: a column is named twice")
    missing = [c for c in FEATURES if c not in columns]
    if missing:
        raise InputError(f"input_data.columns: missing column {missing[0]!r}")
    return [FEATURES.index(c) for c in columns]


def parse_payload(payload: object, max_rows: int) -> np.ndarray:
    """The (n, 10) float64 matrix of a decoded payload, columns in FEATURES order."""
    if type(payload) is not dict:
        raise InputError(f"body: expected a JSON object with 'data' or 'input_data', got {_describe(payload)}")
    if "input_data" in payload:
        block = payload["input_data"]
        if type(block) is not dict or "data" not in block:
            raise InputError("input_data: expected an object with 'columns' and 'data'")
        order = _column_order(block.get("columns", list(FEATURES)))
        rows = _rows_list(block["data"], "input_data.data", max_rows)
        return _rows_matrix(rows, None if order == list(range(N_FEATURES)) else order)
    if "data" not in payload:
        keys = ", ".join(repr(k) for k in list(payload)[:3]) or "none"
        raise InputError(f"body: expected a 'data' or 'input_data' key, got {keys}")
    rows = _rows_list(payload["data"], "data", max_rows)
    if type(rows[0]) is dict:
        return _records_matrix(rows)
    return _rows_matrix(rows)


def _rows_list(rows: object, where: str, max_rows: int) -> list[Any]:
    if type(rows) is not list:
        raise InputError(f"{where}: expected a list of rows, got {_describe(rows)}")
    if not rows:
        raise InputError(f"{where}: the list of rows is empty")
    if len(rows) > max_rows:
        raise InputError(f"{where}: {len(rows)} rows is more than the limit of {max_rows}", status=413)
    return rows


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """The rows as a matrix and, for the classic form's usual body, as sent: JSON text the scoring log reuses."""

    matrix: np.ndarray
    rows_json: bytes | None


def parse_body(body: bytes, max_rows: int) -> ParsedBody:
    """Decode a JSON body and parse it; malformed JSON (NaN and Infinity literals included) is an InputError."""
    fast = _number_rows(body, max_rows)
    if fast is not None:
        return fast
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"body: malformed JSON ({exc})") from None
    return ParsedBody(parse_payload(payload, max_rows), None)


def _number_rows(body: bytes, max_rows: int) -> ParsedBody | None:
    """The classic form's usual body, ``{"data": ROWS}`` with ROWS rows of 10 numbers, or None for any other.

    Decoding ROWS with orjson makes ten Python floats and a list per row, which then become the matrix:
    most of a 1,000-row request's time, and enough short-lived lists to set the garbage collector off
    several times a request. simdjson writes the numbers straight into a buffer of doubles, and the JSON
    text is checked around it: what is left once the numbers and blanks are taken out must be exactly
    the brackets and commas of ``n`` rows of 10. Every other body, good or bad, takes orjson's path,
    which parses the other forms and finds and names what is wrong.
    """
    colon, end = body.find(b":"), body.rfind(b"}")
    head = body[:colon].strip(_BLANKS)
    if colon < 0 or head[:1] != b"{" or head[1:].strip(_BLANKS) != b'"data"' or body[end + 1 :].strip(_BLANKS):
        return None
    text = body[colon + 1 : end]
    structure = text.translate(None, _NUMBER_CHARACTERS)
    n_rows = structure.count(b"[") - 1
    if not 0 < n_rows <= max_rows or structure != _rows_structure(n_rows):
        return None
    try:
        # An array: its brackets and commas were checked above.
        rows = cast("simdjson.Array", simdjson.Parser().parse(text))
        values = rows.as_buffer(of_type="d")
    except (ValueError, RuntimeError):  # a number JSON does not allow, or one beyond float64 or int64
        return None
    matrix = np.frombuffer(values, np.float64).reshape(n_rows, N_FEATURES)
    # The log keeps the rows as sent, on one line.
    rows_json = text.translate(None, b"\r\n") if b"\n" in text or b"\r" in text else text
    return ParsedBody(matrix, rows_json)


def _rows_structure(n_rows: int) -> bytes:
    """The brackets and commas of a JSON list of ``n_rows`` lists of 10 numbers."""
    row = b"," * (N_FEATURES - 1)
    return b"[[" + (row + b"],[") * (n_rows - 1) + row + b"]]"
