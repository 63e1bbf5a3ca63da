"""The scoring logger's own guarantees: exact timestamps, and nothing lost on close."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from diabetes_mlops.monitoring.logger import WRITE_ROWS, ScoringLogger, _iso_utc
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


class FailsOnce(LocalLogStore):
    """A store whose writes are counted by rows, and whose second write fails once, as a disk that fills."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.written_rows: list[int] = []
        self.calls = 0

    def write(self, records: list[dict[str, object]]) -> None:  # type: ignore[override]
        self.calls += 1
        if self.calls == 2:
            raise OSError(28, "No space left on device")
        super().write(records)
        self.written_rows.append(sum(len(r["predictions"]) for r in records))  # type: ignore[arg-type]


def test_a_large_backlog_is_written_in_slices_and_a_failed_slice_is_written_once_later(tmp_path: Path) -> None:
    store = FailsOnce(tmp_path)
    logger = ScoringLogger(store, flush_interval=60.0)
    batch = np.ones((1000, 10))
    for i in range(35):
        logger.log(f"r{i}", 1.79e9 + i, ("diabetes", 3), batch, np.zeros(1000), 0.1, None)
    logger._drain()  # the writer's wake-up: the second slice fails and waits in memory
    assert store.written_rows == [WRITE_ROWS] and logger.unwritten == 25_000 // 1000
    logger.close()  # the final drain retries what waits
    assert store.written_rows == [WRITE_ROWS, WRITE_ROWS, WRITE_ROWS, 5_000]
    assert [r["request_id"] for r in store.read()] == [f"r{i}" for i in range(35)]
    assert logger.dropped == 0
