"""The scoring logger's own guarantees: exact timestamps, and nothing lost on close."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from diabetes_mlops.errors import MlopsError
from diabetes_mlops.monitoring.logger import ScoringLogger, _iso_utc
from diabetes_mlops.monitoring.records import (
    CHUNK_ROWS,
    INLINE_BYTES,
    MAX_BUFFERS,
    BinaryRows,
    decode_record,
    encode_record,
    encoded_chunks,
    record_buffers,
    scoring_record,
)
from diabetes_mlops.monitoring.store import LocalLogStore


@given(st.floats(1.0e9, 4.0e9, allow_nan=False))
def test_fast_timestamps_equal_datetime_isoformat(timestamp: float) -> None:
    expected = datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds")
    assert _iso_utc(timestamp) == expected


def test_close_writes_every_queued_record(tmp_path: Path) -> None:
    store = LocalLogStore(tmp_path)
    logger = ScoringLogger(store, flush_interval=60.0)
    rows = np.arange(20.0).reshape(2, 10)
    for i in range(1000):
        inputs = (b"[[1,2,3,4,5,6,7,8,9,10]]", rows, BinaryRows(rows))[i % 3]
        logger.log(f"r{i}", 1.79e9 + i, ("diabetes", 3), inputs, np.array([1.5, 2.5]), 0.1, None, synthetic=i == 7)
    logger.close()
    records = list(store.read())
    assert [r["request_id"] for r in records] == [f"r{i}" for i in range(1000)]
    assert records[0]["inputs"] == [list(range(1, 11))]
    assert records[1]["inputs"] == records[2]["inputs"] == rows.tolist()
    assert [r["request_id"] for r in records if r["synthetic"]] == ["r7"]
    assert {r["model_version"] for r in records} == {3}


@given(st.lists(st.integers(1, 4_000), max_size=40), st.booleans())
def test_records_are_formatted_in_pieces_of_about_chunk_rows(sizes: list[int], as_text: bool) -> None:
    records = [
        scoring_record(
            f"r{i}", "2026-12-02T00:00:00.000000+00:00", "diabetes", 1, b"[]" if as_text else np.ones((n, 10)),
            np.zeros(n), 0.1,
        )
        for i, n in enumerate(sizes)
    ]  # fmt: skip
    pieces = list(encoded_chunks(records))
    assert b"".join(chain.from_iterable(pieces)) == b"".join(map(encode_record, records))
    assert all(len(piece) <= MAX_BUFFERS for piece in pieces)
    lines = [b"".join(piece).splitlines() for piece in pieces]
    rows = [sum(len(orjson.loads(line)["predictions"]) for line in piece) for piece in lines]
    assert all(CHUNK_ROWS <= n < CHUNK_ROWS + 4_000 for n in rows[:-1])
    assert sum(rows) == sum(sizes) and (not rows or 0 < rows[-1] < CHUNK_ROWS + 4_000)


def test_many_small_records_make_pieces_of_at_most_one_writev() -> None:
    rows = b"[[" + b"1," * (INLINE_BYTES // 2) + b"1]]"  # written as a buffer of its own: four buffers a record
    records = [
        scoring_record(f"r{i}", "2026-12-02T00:00:00.000000+00:00", "diabetes", 1, rows, np.zeros(1), 0.1)
        for i in range(1000)
    ]
    pieces = list(encoded_chunks(records))
    assert [len(piece) for piece in pieces] == [1024, 1024, 1024, 928]
    assert b"".join(chain.from_iterable(pieces)).splitlines() == [encode_record(r).rstrip() for r in records]


@given(
    rows=st.binary(min_size=2, max_size=3_000).map(lambda b: b"[" + b.hex().encode() + b"]"),
    traceparent=st.none() | st.text(max_size=20),
    synthetic=st.booleans(),
)
def test_large_rows_text_is_written_as_its_own_buffer_and_the_line_is_unchanged(
    rows: bytes, traceparent: str | None, synthetic: bool
) -> None:
    record = scoring_record(
        "r", "2026-12-02T00:00:00.000000+00:00", "d", 2, rows, np.arange(3.0), 0.5, traceparent, synthetic
    )
    buffers = record_buffers(record)
    # The line orjson writes of the record with its rows' text as a fragment: the same bytes.
    line = orjson.dumps(
        {**record, "inputs": orjson.Fragment(rows)}, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    )
    assert b"".join(buffers) == line
    assert any(buffer is rows for buffer in buffers) == (len(rows) >= INLINE_BYTES)  # large rows are not copied


@given(
    matrix=hnp.arrays(
        st.sampled_from(["<f8", ">f8", "<f4"]),
        st.tuples(st.integers(1, 40), st.just(10)),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=32),
    ),
    transposed=st.booleans(),
)
def test_binary_rows_are_logged_as_base64_of_doubles_and_read_back_exactly(
    matrix: np.ndarray, transposed: bool
) -> None:
    if transposed:  # a Fortran-ordered matrix, as a view of another's transpose is
        matrix = np.asfortranarray(matrix)
    record = scoring_record("r", "2026-12-02T00:00:00.000000+00:00", "d", 2, BinaryRows(matrix), np.ones(3), 0.5)
    line = encode_record(record)
    logged = orjson.loads(line)
    assert logged["inputs"]["datatype"] == "FP64" and logged["inputs"]["shape"] == list(matrix.shape)
    assert base64.b64decode(logged["inputs"]["base64"]) == matrix.astype("<f8").tobytes(order="C")
    decoded = decode_record(line)
    assert np.array_equal(np.array(decoded.pop("inputs")), matrix.astype(np.float64))
    assert decoded == {key: value for key, value in logged.items() if key != "inputs"}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"datatype": "FP32", "shape": [1, 2], "base64": ""}, "neither rows nor an FP64"),
        ({"datatype": "FP64", "shape": [1], "base64": ""}, "neither rows nor an FP64"),
        ({"datatype": "FP64", "shape": [1, 2], "base64": "AA=A"}, "base64 is malformed"),
        ({"datatype": "FP64", "shape": [1, 2], "base64": base64.b64encode(bytes(8)).decode()}, "8 bytes for a shape"),
    ],
)
def test_a_malformed_logged_tensor_is_named(inputs: dict[str, object], message: str) -> None:
    with pytest.raises(MlopsError, match=message):
        decode_record(orjson.dumps({"request_id": "r", "inputs": inputs}))


def test_a_short_write_is_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.writev`` may write less than it was given (POSIX); what it left is written after it."""
    writev = os.writev

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        return writev(fd, [bytes(buffers[0])[:3]])  # really writes, only the first three bytes

    monkeypatch.setattr(os, "writev", short_writev)
    records = [
        scoring_record(f"r{i}", "2026-12-02T00:00:00.000000+00:00", "diabetes", 1, b"[[1]]", np.zeros(1), 0.1)
        for i in range(3)
    ]
    LocalLogStore(tmp_path).write(records)
    assert (tmp_path / "scoring-2026-12-02.jsonl").read_bytes() == b"".join(map(encode_record, records))


def test_a_write_that_fails_after_its_first_pieces_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    store = LocalLogStore(tmp_path)
    first = scoring_record("r0", "2026-12-02T00:00:00.000000+00:00", "diabetes", 1, b"[]", np.zeros(1), 0.1)
    store.write([first])
    before = (tmp_path / "scoring-2026-12-02.jsonl").read_bytes()
    batch = np.ones((1000, 10))
    records = [{**first, "request_id": f"r{i}", "inputs": batch, "predictions": np.zeros(1000)} for i in range(35)]
    records[25]["inputs"] = object()  # formatting the third piece fails, after two were written
    with pytest.raises(TypeError):
        store.write(records)
    assert (tmp_path / "scoring-2026-12-02.jsonl").read_bytes() == before


def test_a_backlog_half_the_bound_starts_the_writer_before_its_timer(tmp_path: Path) -> None:
    """At full speed, waiting for the timer would leave requests waiting at the bound every turn."""
    store = LocalLogStore(tmp_path)
    logger = ScoringLogger(store, flush_interval=60.0, max_backlog_rows=10)
    try:
        logger.log("small", 1.79e9, ("diabetes", 3), b"[[1]]", np.zeros(5), 0.1, None)
        time.sleep(0.3)
        assert list(store.read()) == []  # 5 rows: not half the bound, the timer's turn
        logger.log("large", 1.79e9, ("diabetes", 3), b"[[1]]", np.zeros(1), 0.1, None)
        deadline = time.monotonic() + 10
        while len(list(store.read())) < 2:
            assert time.monotonic() < deadline, "the writer did not start its turn"
            time.sleep(0.01)
    finally:
        logger.close()


def test_matrices_orjson_does_not_write_itself_are_logged_and_do_not_stop_the_log(tmp_path: Path) -> None:
    store = LocalLogStore(tmp_path)
    logger = ScoringLogger(store, flush_interval=60.0)
    for rows in (2, 40):  # formatted as it is logged, and by the writer
        fortran = np.asfortranarray(np.arange(rows * 10.0).reshape(rows, 10))  # not C-ordered
        logger.log(f"fortran-{rows}", 1.79e9, ("diabetes", 3), fortran, np.ones(rows), 0.1, None)
        half = np.ones((rows, 10), dtype=np.float16)
        logger.log(f"float16-{rows}", 1.79e9, ("diabetes", 3), half, np.ones(rows, dtype=np.float16), 0.1, None)
    logger.close()
    records = {r["request_id"]: r for r in store.read()}
    assert list(records) == ["fortran-2", "float16-2", "fortran-40", "float16-40"]
    assert records["fortran-40"]["inputs"] == np.arange(400.0).reshape(40, 10).tolist()
    assert records["float16-2"]["predictions"] == [1.0, 1.0]
    assert logger.dropped == 0 and not logger.failing and logger.unwritten == 0


def test_the_store_leaves_no_written_pages_in_the_page_cache(tmp_path: Path) -> None:
    """At full load the log streams hundreds of MB a second: kept in the page cache, it fills memory."""
    store = LocalLogStore(tmp_path)
    records = [
        scoring_record(f"r{i}", "2026-12-02T00:00:00.000000+00:00", "d", 1, np.ones((1000, 10)), np.ones(1000), 0.1)
        for i in range(100)
    ]
    store.write(records)
    (path,) = tmp_path.glob("*.jsonl")
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())  # written to disk: the pages the next write's advice may drop
    store.write(records[:1])
    size = path.stat().st_size
    resident = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)], capture_output=True, text=True, check=True
    )
    assert size > 2_000_000 and int(resident.stdout) < size // 10
