"""Which table is the training data now, and which table has a given fingerprint.

The current training data is an explicit source when one is given, else the latest ingested snapshot, else
``data_path``, else the built-in data set. The table and its label are resolved together, so the label
cannot name another snapshot than the one read. Training, ingestion, drift and ``retrain --if-due`` all
ask here, so they agree on what "the training data" is.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.data import BUILTIN

if TYPE_CHECKING:
    import pandas as pd

    from diabetes_mlops.config import Settings


@dataclass(frozen=True)
class TrainingData:
    """A training table and a label for where it came from (a file, a snapshot's file, or ``builtin``)."""

    frame: pd.DataFrame
    source: str

    @functools.cached_property
    def fingerprint(self) -> str:
        from diabetes_mlops.data import fingerprint

        return fingerprint(self.frame)


def current(settings: Settings, source: Path | str | None = None) -> TrainingData:
    """The table to train on: ``source``, else the latest ingested snapshot, else ``data_path``, else built-in."""
    from diabetes_mlops.data import load_dataset
    from diabetes_mlops.snapshots import latest_snapshot, load_snapshot, snapshot_path

    if source is None:
        snapshot = latest_snapshot(settings)
        if snapshot is not None:
            return TrainingData(load_snapshot(settings, snapshot), str(snapshot_path(settings, snapshot)))
        source = settings.data_path or BUILTIN
    return TrainingData(load_dataset(source), str(source))


def training_data(settings: Settings, source: Path | str | None = None) -> pd.DataFrame:
    """The table of ``current``: ``source``, else the latest snapshot, else ``data_path``, else built-in."""
    return current(settings, source).frame


def find(settings: Settings, fingerprint: str) -> TrainingData | None:
    """The table with this fingerprint: a snapshot (newest first), ``data_path`` or built-in; None if none has it."""
    from diabetes_mlops.data import load_dataset
    from diabetes_mlops.snapshots import load_snapshot, read_manifest, snapshot_path

    for snapshot in reversed(read_manifest(settings)):
        if snapshot.fingerprint == fingerprint:
            return TrainingData(load_snapshot(settings, snapshot), str(snapshot_path(settings, snapshot)))
    configured: list[Path | str] = [settings.data_path] if settings.data_path else []
    for source in [*configured, BUILTIN]:
        candidate = TrainingData(load_dataset(source), str(source))
        if candidate.fingerprint == fingerprint:
            return candidate
    return None
