"""The scoring logger's own guarantees: exact timestamps, and nothing lost on close."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from diabetes_mlops.monitoring.logger import ScoringLogger, _iso_utc
from diabetes_mlops.monitoring.records import CHUNK_ROWS, encode_record, encoded_chunks, scoring_record
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
        inputs = rows if i % 2 else b"[[1,2,3,4,5,6,7,8,9,10]]"
        logger.log(f"r{i}", 1.79e9 + i, ("diabetes", 3), inputs, np.array([1.5, 2.5]), 0.1, None, synthetic=i == 7)
    logger.close()
    records = list(store.read())
    assert [r["request_id"] for r in records] == [f"r{i}" for i in range(1000)]
    assert records[1]["inputs"] == rows.tolist() and records[0]["inputs"] == [list(range(1, 11))]
    assert [r["request_id"] for r in records if r["synthetic"]] == ["r7"]
    assert {r["model_version"] for r in records} == {3}


@given(st.lists(st.integers(1, 4_000), max_size=40))
def test_records_are_formatted_in_pieces_of_about_chunk_rows(sizes: list[int]) -> None:
    records = [
        scoring_record(f"r{i}", "2026-12-02T00:00:00.000000+00:00", "diabetes", 1, b"[]", np.zeros(n), 0.1)
        for i, n in enumerate(sizes)
    ]
    pieces = list(encoded_chunks(records))
    assert b"".join(pieces) == b"".join(map(encode_record, records))
    rows = [sum(len(orjson.loads(line)["predictions"]) for line in piece.splitlines()) for piece in pieces]
    assert all(CHUNK_ROWS <= n < CHUNK_ROWS + 4_000 for n in rows[:-1])
    assert sum(rows) == sum(sizes) and (not rows or 0 < rows[-1] < CHUNK_ROWS + 4_000)


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
