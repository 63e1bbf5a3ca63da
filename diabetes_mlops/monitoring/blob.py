"""Scoring logs on Azure Blob Storage, with a local spool that keeps every record through an outage.

Each ``write`` becomes one block blob per hour it touches, ``<prefix>/YYYY/MM/DD/HH/<writer>-<seq>.jsonl``,
named before it is sent: the batch is first written to the spool directory under that name, then uploaded
with ``overwrite=True``, then removed from the spool. A retry after a lost response rewrites the same blob
with the same bytes, so nothing is duplicated; batches leave the spool in the order they entered it, and
the first failure stops the flush, so nothing overtakes an earlier batch. ``<writer>`` starts with the
writer's start time, so blob names sort in writing order.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from diabetes_mlops.monitoring.records import encode_record

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
    ) -> None:
        self.container = container
        self.spool_dir = Path(spool_dir)
        self.prefix = prefix.strip("/")
        self.retry_after = retry_after
        self.writer_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)
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
        options = {"retry_total": 1, "connection_timeout": 5, "read_timeout": 30}
        if settings.azure_storage_connection_string:
            container = ContainerClient.from_connection_string(
                settings.azure_storage_connection_string, settings.azure_storage_container, **options
            )
        else:
            container = ContainerClient(
                require(settings, "azure_storage_account_url"),
                settings.azure_storage_container,
                credential=credential or default_credential(),
                **options,
            )
        return cls(container, settings.logs_dir / "blob-spool")

    # --- writing -------------------------------------------------------------------------------------

    def write(self, records: Iterable[dict[str, object]]) -> None:
        """Spool the records (durably, in order), then send whatever the container will take now."""
        by_hour: dict[str, list[bytes]] = {}
        for record in records:
            by_hour.setdefault(_hour_path(str(record["time"])), []).append(encode_record(record))
        if not by_hour:
            return
        with self._lock:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            for hour, lines in by_hour.items():
                self._seq += 1
                blob = f"{self.prefix}/{hour}/{self.writer_id}-{self._seq:08d}.jsonl"
                self._spool(blob, b"".join(lines))
        if time.monotonic() >= self._down_until:
            self.flush()

    def _spool(self, blob: str, data: bytes) -> None:
        # The file name keeps the blob name and sorts in writing order; a rename makes it appear whole.
        name = f"{time.time_ns():020d}@{blob.replace('/', '~')}"
        tmp = self.spool_dir / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.spool_dir / name)

    def pending(self) -> list[Path]:
        """Spooled batches not yet sent, oldest first."""
        if not self.spool_dir.is_dir():
            return []
        return sorted(p for p in self.spool_dir.iterdir() if "@" in p.name and not p.name.startswith("."))

    def flush(self) -> int:
        """Send spooled batches in order until one fails; the number still waiting."""
        from azure.core.exceptions import AzureError, ResourceExistsError

        with self._lock:
            try:
                if not self._container_ready:
                    with contextlib.suppress(ResourceExistsError):  # another writer made it first
                        self.container.create_container()
                    self._container_ready = True
                for path in self.pending():
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
        """Records in time order, those at or after ``since`` (UTC) when given; hour by hour."""
        floor = since.astimezone(UTC).isoformat() if since else ""
        floor_hour = since.astimezone(UTC).strftime("%Y/%m/%d/%H") if since else ""
        by_hour: dict[str, list[str]] = {}
        for blob in self.container.list_blobs(name_starts_with=self.prefix + "/"):
            hour = "/".join(blob.name.split("/")[-5:-1])
            if hour >= floor_hour:
                by_hour.setdefault(hour, []).append(blob.name)
        for hour in sorted(by_hour):
            records = []
            for name in sorted(by_hour[hour]):
                data = self.container.download_blob(name).readall()
                records.extend(orjson.loads(line) for line in data.splitlines() if line.strip())
            records.sort(key=lambda r: str(r["time"]))  # stable: one writer's order is kept for equal times
            for record in records:
                if str(record["time"]) >= floor:
                    yield record
