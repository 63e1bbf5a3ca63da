"""Dataset snapshots: each ingestion makes a new immutable, fingerprinted copy of the whole training table.

Layout under ``<home>/data/snapshots``::

    000001-<fingerprint12>.parquet   the whole table after the first ingestion, never rewritten
    manifest.json                    every snapshot, and every ingested file (sha256) and what came of it
    .lock                            taken while a snapshot is added
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.errors import DataError
from diabetes_mlops.files import write_atomic

if TYPE_CHECKING:
    import pandas as pd
    from filelock import FileLock

    from diabetes_mlops.config import Settings

MANIFEST_FILE = "manifest.json"
LOCK_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Snapshot:
    """One version of the training table: its file, fingerprint, size and the batch that made it."""

    number: int
    file: str
    fingerprint: str
    n_rows: int
    n_added: int
    source: str
    source_sha256: str
    created: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def snapshots_dir(settings: Settings) -> Path:
    return settings.data_dir / "snapshots"


def _manifest(settings: Settings) -> dict[str, list[dict[str, object]]]:
    path = snapshots_dir(settings) / MANIFEST_FILE
    if not path.is_file():
        return {"snapshots": [], "batches": []}
    try:
        data = json.loads(path.read_text())
        return {"snapshots": list(data["snapshots"]), "batches": list(data.get("batches", []))}
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a snapshot manifest ({exc})") from exc


def read_manifest(settings: Settings) -> list[Snapshot]:
    """Every snapshot, oldest first; none when nothing was ingested yet."""
    try:
        return [Snapshot(**entry) for entry in _manifest(settings)["snapshots"]]  # type: ignore[arg-type]
    except TypeError as exc:
        raise DataError(f"{snapshots_dir(settings) / MANIFEST_FILE}: not a snapshot manifest ({exc})") from exc


def ingested_batch(settings: Settings, source_sha256: str) -> dict[str, object] | None:
    """The record of an earlier ingestion of a file with these bytes, if there was one."""
    return next((b for b in _manifest(settings)["batches"] if b.get("sha256") == source_sha256), None)


def latest_snapshot(settings: Settings) -> Snapshot | None:
    snapshots = read_manifest(settings)
    return snapshots[-1] if snapshots else None


def snapshot_path(settings: Settings, snapshot: Snapshot) -> Path:
    return snapshots_dir(settings) / snapshot.file


def load_snapshot(settings: Settings, snapshot: Snapshot) -> pd.DataFrame:
    """The table of a snapshot, after its content is checked against the recorded fingerprint."""
    import pandas as pd

    from diabetes_mlops.data import COLUMNS, fingerprint

    path = snapshot_path(settings, snapshot)
    try:
        frame = pd.read_parquet(path).loc[:, list(COLUMNS)].astype("float64")
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: snapshot {snapshot.number} cannot be read ({exc})") from exc
    if fingerprint(frame) != snapshot.fingerprint:
        raise DataError(f"{path}: snapshot {snapshot.number} does not match its recorded fingerprint")
    return frame


def commit(settings: Settings, batch: dict[str, object], frame: pd.DataFrame | None = None) -> Snapshot | None:
    """Record an ingested file and, with ``frame``, make it the next snapshot; the caller holds ``lock()``.

    The snapshot file is written first and the manifest last, each atomically, so a crash in between
    leaves an unlisted file and never a listed snapshot that is missing or half written.
    """
    import io

    from diabetes_mlops.data import COLUMNS, fingerprint

    root = snapshots_dir(settings)
    manifest = _manifest(settings)
    snapshot = None
    if frame is not None:
        existing = read_manifest(settings)
        number = existing[-1].number + 1 if existing else 1
        table = frame.loc[:, list(COLUMNS)].astype("float64").reset_index(drop=True)
        digest = fingerprint(table)
        snapshot = Snapshot(
            number=number,
            file=f"{number:06d}-{digest[:12]}.parquet",
            fingerprint=digest,
            n_rows=len(table),
            n_added=int(batch.get("n_added", 0)),  # type: ignore[call-overload]
            source=str(batch.get("source", "")),
            source_sha256=str(batch.get("sha256", "")),
            created=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        write_atomic(root / snapshot.file, buffer.getvalue())
        manifest["snapshots"].append(snapshot.to_dict())
    manifest["batches"].append({**batch, "snapshot": snapshot.number if snapshot else None})
    write_atomic(root / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())
    return snapshot


def lock(settings: Settings) -> FileLock:
    """The lock that serialises ingestions, so two never pick the same snapshot number."""
    from filelock import FileLock

    root = snapshots_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    return FileLock(root / ".lock", timeout=LOCK_TIMEOUT_SECONDS)
