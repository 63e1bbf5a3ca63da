"""Scoring logs on Azure Blob Storage, with a local spool that keeps every record through an outage.

Records are appended (and fsynced) to a batch file in the spool directory, one per hour they belong to,
named for the block blob it becomes: ``<prefix>/YYYY/MM/DD/HH/<writer>-<seq>.jsonl``. A batch is closed and
uploaded once it is ``upload_interval`` seconds old (the ``scoring_log_upload_interval`` setting, a minute by
default: tens of blobs an hour per writer, not one per 50 ms flush of the scoring log), when its hour is over,
or at ``flush()`` (the scoring log's shutdown); it is uploaded with ``overwrite=True`` and then removed from
the spool. A retry after a lost response rewrites the same blob with the same bytes, so nothing is duplicated;
batches leave the spool in the order they were opened, and the first failure stops the flush, so nothing
overtakes an earlier batch.
``<writer>`` starts with the writer's start time, so blob names sort in writing order. Batches a crashed
writer left behind are sent by the next writer on the same spool. Reading lists only the days asked for.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.config import DEFAULTS
from diabetes_mlops.monitoring.records import Record, decode_record, encoded_chunks, record_time
from diabetes_mlops.runs import new_id

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import ContainerClient

    from diabetes_mlops.config import Settings

DEFAULT_PREFIX = "scoring"
RETRY_AFTER_SECONDS = 30.0


def _hour_path(time_text: str) -> str:
    """``YYYY/MM/DD/HH`` of an ISO time, taken in UTC."""
    moment = datetime.fromisoformat(time_text).astimezone(UTC)
    return moment.strftime("%Y/%m/%d/%H")


class BlobLogStore:
    """A ``LogSink`` on one blob container; records wait in ``spool_dir`` until the container takes them."""

    def __init__(
        self,
        container: ContainerClient,
        spool_dir: Path,
        prefix: str = DEFAULT_PREFIX,
        retry_after: float = RETRY_AFTER_SECONDS,
        upload_interval: float = DEFAULTS.scoring_log_upload_interval,
    ) -> None:
        self.container = container
        self.spool_dir = Path(spool_dir)
        self.prefix = prefix.strip("/")
        self.retry_after = retry_after
        self.upload_interval = upload_interval
        self._open: dict[str, tuple[Path, float]] = {}  # hour -> (batch file still filling, when it was opened)
        self.writer_id = new_id()
        self._seq = 0
        self._lock = threading.Lock()
        self._container_ready = False
        self._down_until = 0.0
        self.last_error: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, credential: TokenCredential | None = None) -> BlobLogStore:
        """The container of ``azure_storage_container``, by connection string or by account URL and identity."""
        from azure.storage.blob import ContainerClient

        from diabetes_mlops.azure.clients import default_credential, require

        # Few, quick retries: an outage should make writes spool, not make the scoring request wait.
        if settings.azure.storage_connection_string:
            container = ContainerClient.from_connection_string(
                settings.azure.storage_connection_string,
                settings.azure.storage_container,
                retry_total=1,
                connection_timeout=5,
                read_timeout=30,
            )
        else:
            container = ContainerClient(
                require(settings.azure, "storage_account_url"),
                settings.azure.storage_container,
                credential=credential or default_credential(settings),
                retry_total=1,
                connection_timeout=5,
                read_timeout=30,
            )
        return cls(container, settings.logs_dir / "blob-spool", upload_interval=settings.scoring_log_upload_interval)

    # --- writing -------------------------------------------------------------------------------------

    def write(self, records: Iterable[Record]) -> None:
        """Append the records to their hours' batches (durably, in order); send the batches that are due."""
        by_hour: dict[str, list[Record]] = {}
        for record in records:
            by_hour.setdefault(_hour_path(record_time(record)), []).append(record)
        if not by_hour:
            return
        with self._lock:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            for hour, hour_records in by_hour.items():
                if hour not in self._open:
                    self._seq += 1
                    blob = f"{self.prefix}/{hour}/{self.writer_id}-{self._seq:08d}.jsonl"
                    # The file name keeps the blob name and sorts in opening order.
                    path = self.spool_dir / f"{time.time_ns():020d}@{blob.replace('/', '~')}"
                    self._open[hour] = (path, time.monotonic())
                with open(self._open[hour][0], "ab") as fh:
                    for piece in encoded_chunks(hour_records):
                        fh.writelines(piece)
                    fh.flush()
                    os.fsync(fh.fileno())
        self.send_due()

    def send_due(self) -> None:
        """Send the batches that are due, and retry those a failure kept, once ``retry_after`` has passed.

        The scoring log calls this on its timer too, so a service that goes quiet still sends its last batch
        within ``upload_interval``, not at its next request.
        """
        now = time.monotonic()
        with self._lock:
            due = (
                self._down_until > 0
                or len(self._open) > 1
                or any(now - opened >= self.upload_interval for _, opened in self._open.values())
            )
        if due and now >= self._down_until:
            self._send(everything=False)

    def _close_batches(self, everything: bool) -> None:
        """Stop filling the batches that are due (all with ``everything``): from now on they are only sent."""
        newest = max(self._open, default="")
        for hour, (_, opened) in list(self._open.items()):
            if everything or hour < newest or time.monotonic() - opened >= self.upload_interval:
                del self._open[hour]

    def pending(self) -> list[Path]:
        """Spooled batches not yet sent, oldest first."""
        if not self.spool_dir.is_dir():
            return []
        return sorted(p for p in self.spool_dir.iterdir() if "@" in p.name and not p.name.startswith("."))

    def flush(self) -> int:
        """Close every batch and send them all in order until one fails; the number still waiting."""
        return self._send(everything=True)

    def _send(self, everything: bool) -> int:
        """Send the closed batches (all with ``everything``) in order until one fails; the number waiting."""
        from azure.core.exceptions import AzureError, ResourceExistsError

        with self._lock:
            self._close_batches(everything)
            filling = {path for path, _ in self._open.values()}
            try:
                if not self._container_ready:
                    with contextlib.suppress(ResourceExistsError):  # another writer made it first
                        self.container.create_container()
                    self._container_ready = True
                for path in self.pending():
                    if path in filling:
                        continue
                    blob = path.name.partition("@")[2].replace("~", "/")
                    self.container.upload_blob(blob, path.read_bytes(), overwrite=True)
                    path.unlink()
            except AzureError as exc:
                # Keep the batches; the message names the failure type only, never a URL with a token in it.
                self.last_error = type(exc).__name__
                self._down_until = time.monotonic() + self.retry_after
            else:
                self.last_error = None
                self._down_until = 0.0
            return len(self.pending())

    # --- reading -------------------------------------------------------------------------------------

    def read(self, since: datetime | None = None) -> Iterator[dict[str, object]]:
        """Records in time order, those at or after ``since`` (UTC) when given; listing only the days from then."""
        floor = since.astimezone(UTC).isoformat() if since else ""
        floor_hour = since.astimezone(UTC).strftime("%Y/%m/%d/%H") if since else ""
        by_hour: dict[str, list[str]] = {}
        for prefix in self._day_prefixes(since):
            for blob in self.container.list_blobs(name_starts_with=prefix):
                hour = "/".join(blob.name.split("/")[-5:-1])
                if hour >= floor_hour:
                    by_hour.setdefault(hour, []).append(blob.name)
        for hour in sorted(by_hour):
            records: list[dict[str, object]] = []
            for name in sorted(by_hour[hour]):
                data = self.container.download_blob(name).readall()
                records.extend(decode_record(line) for line in data.splitlines() if line.strip())
            records.sort(key=lambda r: str(r["time"]))  # stable: one writer's order is kept for equal times
            for record in records:
                if str(record["time"]) >= floor:
                    yield record

    def _day_prefixes(self, since: datetime | None) -> list[str]:
        """``<prefix>/YYYY/MM/DD/`` for each day from ``since`` to tomorrow (clocks differ), or the whole prefix."""
        if since is None:
            return [self.prefix + "/"]
        day, last = since.astimezone(UTC).date(), datetime.now(UTC).date() + timedelta(days=1)
        prefixes = []
        while day <= last:
            prefixes.append(f"{self.prefix}/{day:%Y/%m/%d}/")
            day += timedelta(days=1)
        return prefixes
