"""Scoring logs on Blob Storage, against a real Azurite: layout, reading back, and an outage."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from azurite import Azurite

from diabetes_mlops.monitoring.blob import BlobLogStore
from diabetes_mlops.monitoring.records import BinaryRows, scoring_record


def _record(moment: datetime, n: int) -> dict[str, object]:
    """A record of one row: as rows, or for odd ``n`` as the binary tensor a binary request logs."""
    rows = [[0.01 * n] * 10]
    return scoring_record(
        request_id=f"req-{n:04d}",
        time=moment.isoformat(timespec="microseconds"),
        model_name="diabetes",
        model_version=1,
        inputs=BinaryRows(np.array(rows)) if n % 2 else rows,
        predictions=[100.0 + n],
        latency_ms=1.5,
    )


def _as_read(record: dict[str, object]) -> dict[str, object]:
    """The record as a reader gets it back: a binary tensor's rows as lists."""
    inputs = record["inputs"]
    return {**record, "inputs": inputs.matrix.tolist() if isinstance(inputs, BinaryRows) else inputs}


def test_records_are_partitioned_by_hour_and_read_back_in_order(container, tmp_path: Path) -> None:
    store = BlobLogStore(container, tmp_path / "spool")
    start = datetime(2026, 11, 26, 3, 58, tzinfo=UTC)
    records = [_record(start + timedelta(minutes=i), i) for i in range(4)]  # 03:58 .. 04:01
    store.write(records[:2])
    store.write(records[2:])  # a new hour: the 03 batch is complete and goes
    assert [b.name.rsplit("/", 1)[0] for b in container.list_blobs()] == ["scoring/2026/11/26/03"]
    assert store.flush() == 0  # the scoring log's shutdown sends the batch still filling

    names = sorted(b.name for b in container.list_blobs())
    assert [n.rsplit("/", 1)[0] for n in names] == ["scoring/2026/11/26/03", "scoring/2026/11/26/04"]
    assert all(n.endswith(".jsonl") and store.writer_id in n for n in names)
    assert store.pending() == []
    assert list(store.read()) == list(map(_as_read, records))
    assert [r["request_id"] for r in store.read(since=start + timedelta(minutes=2))] == ["req-0002", "req-0003"]


def test_a_second_store_on_the_same_container_reads_what_the_first_wrote(container, tmp_path: Path) -> None:
    writer = BlobLogStore(container, tmp_path / "a")
    moment = datetime(2026, 1, 2, 10, 0, tzinfo=UTC)
    writer.write([_record(moment, 1)])
    writer.flush()
    reader = BlobLogStore(container, tmp_path / "b")
    assert [r["request_id"] for r in reader.read()] == ["req-0001"]
    assert reader.writer_id != writer.writer_id


def test_outage_spools_then_every_record_arrives_once_in_order(tmp_path: Path) -> None:
    from azure.storage.blob import ContainerClient

    server = Azurite(tmp_path / "data", persistent=True)  # blobs must outlive the restart
    server.start()
    try:
        container = ContainerClient.from_connection_string(
            server.connection_string, f"logs{uuid.uuid4().hex[:8]}", retry_total=0, connection_timeout=2
        )
        store = BlobLogStore(container, tmp_path / "spool", retry_after=0, upload_interval=0)
        moment = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)
        before = [_record(moment + timedelta(seconds=i), i) for i in range(3)]
        store.write(before)
        assert store.pending() == []

        server.stop()
        during = [_record(moment + timedelta(seconds=10 + i), 10 + i) for i in range(5)]
        for record in during:
            store.write([record])  # one batch per scoring request, as the service writes them
        assert store.last_error is not None
        assert len(store.pending()) == 5
        assert store.flush() == 5  # still down: nothing sent, nothing lost

        server.start()
        assert store.flush() == 0
        after = [_record(moment + timedelta(seconds=20), 20)]
        store.write(after)

        got = [r["request_id"] for r in BlobLogStore(container, tmp_path / "other").read()]
        assert got == [r["request_id"] for r in before + during + after]
        assert len(got) == len(set(got))
        # A flush repeated after success sends nothing again.
        assert store.flush() == 0
        assert len(list(container.list_blobs())) == 1 + 5 + 1
    finally:
        server.stop()


def test_spooled_batches_of_a_crashed_writer_are_sent_by_the_next_one(tmp_path: Path, container) -> None:
    from azure.storage.blob import ContainerClient

    dead = ContainerClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;",
        container.container_name,
        retry_total=0,
        connection_timeout=1,
    )
    moment = datetime(2026, 5, 6, 7, 0, tzinfo=UTC)
    first = BlobLogStore(dead, tmp_path / "spool")
    first.write([_record(moment, 1)])
    first.write([_record(moment + timedelta(seconds=1), 2)])  # the same batch: not a minute old yet
    assert len(first.pending()) == 1  # then the process dies

    second = BlobLogStore(container, tmp_path / "spool")
    assert second.flush() == 0
    assert [r["request_id"] for r in second.read()] == ["req-0001", "req-0002"]


def test_a_minute_of_scoring_is_one_blob_and_reading_a_day_lists_only_that_day(container, tmp_path: Path) -> None:
    """The log writer flushes every 50 ms; Blob Storage gets one blob per batch interval, not one per flush."""
    store = BlobLogStore(container, tmp_path / "spool", upload_interval=0.5)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for n in range(40):  # 40 flushes of the scoring log
        store.write([_record(now + timedelta(milliseconds=n), n)])
    assert list(container.list_blobs()) == []  # still filling
    time.sleep(0.6)
    store.write([_record(now + timedelta(seconds=1), 99)])  # the batch is now half a second old: it goes whole
    assert len(list(container.list_blobs())) == 1
    store.write([_record(now + timedelta(seconds=2), 100)])  # a new batch
    assert store.flush() == 0
    assert len(list(container.list_blobs())) == 2
    old = BlobLogStore(container, tmp_path / "old", upload_interval=0)
    old.write([_record(now - timedelta(days=30), 1000)])

    listed: list[str] = []

    class Listing:  # the real container, with each listing's prefix noted
        def __getattr__(self, name: str) -> object:
            return getattr(container, name)

        def list_blobs(self, name_starts_with: str, **kwargs: object) -> object:
            listed.append(name_starts_with)
            return container.list_blobs(name_starts_with=name_starts_with, **kwargs)

    reader = BlobLogStore(Listing(), tmp_path / "reader")  # type: ignore[arg-type]
    got = [r["request_id"] for r in reader.read(since=now - timedelta(hours=1))]
    assert got == [f"req-{n:04d}" for n in [*range(40), 99, 100]]
    assert 2 <= len(listed) <= 3 and all(p.startswith("scoring/20") and p.count("/") == 4 for p in listed)
    assert len(list(reader.read())) == 43  # everything, the old day too


def test_a_service_that_goes_quiet_still_sends_its_last_batch(container, tmp_path: Path) -> None:
    """No request after the last records: the scoring log's timer sends the batch once it is due, without a
    shutdown, so drift sees a quiet service's records within the upload interval."""
    import numpy as np

    from diabetes_mlops.monitoring.logger import ScoringLogger

    store = BlobLogStore(container, tmp_path / "spool", upload_interval=0.3)
    logger = ScoringLogger(store)
    try:
        for n in range(3):
            logger.log(f"quiet-{n}", time.time(), ("diabetes", 1), np.zeros((1, 10)), np.array([1.0]), 0.2, None)
        deadline = time.monotonic() + 30
        while not list(container.list_blobs()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r["request_id"] for r in store.read()] == ["quiet-0", "quiet-1", "quiet-2"]
        assert store.pending() == []
    finally:
        logger.close()


def test_containers_get_the_upload_interval_only_with_blob_logs(tmp_path: Path) -> None:
    from diabetes_mlops.config import load_settings
    from diabetes_mlops.deploy.targets.base import container_environment

    local = {v.name for v in container_environment(load_settings(home=tmp_path, scoring_key="k"), 5001)}
    assert "DIABETES_MLOPS_SCORING_LOG_UPLOAD_INTERVAL" not in local
    wired = load_settings(
        home=tmp_path, scoring_key="k", azure_storage_account_url="https://a.blob.core.windows.net",
        scoring_log_upload_interval=5,
    )  # fmt: skip
    by_name = {v.name: v for v in container_environment(wired, 5001)}
    assert by_name["DIABETES_MLOPS_SCORING_LOG_UPLOAD_INTERVAL"].value == "5.0"
    assert load_settings(home=tmp_path, **{"scoring_log_upload_interval": "5.0"}).scoring_log_upload_interval == 5.0
