"""Log sinks: the ``LogSink`` protocol, and the sink the settings name (``store.py`` local, ``blob.py`` Azure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from diabetes_mlops.monitoring.store import LocalLogStore

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from datetime import datetime

    from diabetes_mlops.config import Settings
    from diabetes_mlops.monitoring.records import Record


class LogSink(Protocol):
    """Where scoring records go, and where drift and retraining read them back."""

    def write(self, records: Iterable[Record]) -> None: ...

    def read(self, since: datetime | None = None) -> Iterator[dict[str, object]]: ...


def open_log_sink(settings: Settings) -> LogSink:
    """Where scoring records go and are read back from: Blob Storage when configured, else local files."""
    if settings.azure.storage_account_url or settings.azure.storage_connection_string:
        from diabetes_mlops.monitoring.blob import BlobLogStore

        return BlobLogStore.from_settings(settings)
    return LocalLogStore(settings.logs_dir)
