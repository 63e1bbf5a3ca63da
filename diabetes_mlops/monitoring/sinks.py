"""The log sink the settings name: local JSON-lines files by default."""

from __future__ import annotations

from typing import TYPE_CHECKING

from diabetes_mlops.monitoring.store import LocalLogStore, LogSink

if TYPE_CHECKING:
    from diabetes_mlops.config import Settings


def open_log_sink(settings: Settings) -> LogSink:
    """Where scoring records go and are read back from: Blob Storage when configured, else local files."""
    if settings.azure_storage_account_url or settings.azure_storage_connection_string:
        from diabetes_mlops.monitoring.blob import BlobLogStore

        return BlobLogStore.from_settings(settings)
    return LocalLogStore(settings.logs_dir)
