"""Ingestion of new labelled rows: validate row by row, quarantine the bad ones, snapshot the dataset.

A batch (a CSV/Parquet file with every feature and ``target``, or labels for logged scoring requests)
is validated with the schema. Each row that fails a per-value check (type, null, finite, range) goes
to a quarantine file with its reasons; the other rows that are not already in the dataset join it as a
new immutable snapshot. Distribution checks (mean and spread against the reference) do not reject
rows: a batch of real labelled cases whose distribution moved is what retraining needs, and whether
the population moved is the drift report's question. They are reported as warnings.

Ingesting is idempotent: a file whose bytes were ingested before adds nothing, and rows equal to rows
already in the dataset (or repeated within the batch) are counted as duplicates and not added again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops import progress
from diabetes_mlops.data import COLUMNS, FEATURES, TARGET
from diabetes_mlops.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from diabetes_mlops.config import Settings
    from diabetes_mlops.monitoring.sinks import LogSink
    from diabetes_mlops.snapshots import Snapshot

# Checks on a whole column's distribution: reported, never a reason to reject rows.
DISTRIBUTION_CHECKS = ("mean_near_reference", "std_near_reference")
REQUEST_ID = "request_id"
ROW = "row"
REASON = "reason"


@dataclass
class IngestResult:
    """What one ingestion did: rows read, valid, quarantined, duplicate and added, and where they went."""

    source: str
    sha256: str
    n_rows: int = 0
    n_valid: int = 0
    n_quarantined: int = 0
    n_duplicates: int = 0
    n_added: int = 0
    snapshot: Snapshot | None = None
    quarantine_file: Path | None = None
    already_ingested: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "n_rows": self.n_rows,
            "n_valid": self.n_valid,
            "n_quarantined": self.n_quarantined,
            "n_duplicates": self.n_duplicates,
            "n_added": self.n_added,
            "snapshot": self.snapshot.to_dict() if self.snapshot else None,
            "quarantine_file": str(self.quarantine_file) if self.quarantine_file else None,
            "already_ingested": self.already_ingested,
            "warnings": self.warnings,
        }

    def summary(self) -> str:
        """Human text: the counts, then the snapshot and quarantine file, then any warning."""
        if self.already_ingested:
            return f"{self.source}: already ingested (same sha256), nothing added"
        lines = [
            f"{self.source}: {self.n_rows} rows: {self.n_added} added, {self.n_quarantined} quarantined, "
            f"{self.n_duplicates} already in the dataset"
        ]
        if self.snapshot:
            lines.append(
                f"snapshot {self.snapshot.number}: {self.snapshot.n_rows} rows, "
                f"fingerprint {self.snapshot.fingerprint[:12]}"
            )
        else:
            lines.append("no new snapshot: the dataset is unchanged")
        if self.quarantine_file:
            lines.append(f"quarantine: {self.quarantine_file}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def quarantine_dir(settings: Settings) -> Path:
    return settings.data_dir / "quarantine"


def row_reasons(
    batch: pd.DataFrame, source: str, *, with_target: bool = True
) -> tuple[dict[int, list[str]], list[str]]:
    """Per-row failure reasons of the schema's per-value checks (keyed by index), and distribution warnings."""
    from diabetes_mlops.schema import validate_frame

    report = validate_frame(batch, with_target=with_target, source=source)
    reasons: dict[int, list[str]] = {}
    warnings: list[str] = []
    for failure in report.failures:
        if failure.row is None:
            if failure.check in DISTRIBUTION_CHECKS:
                warnings.append(f"column {failure.column!r}: {failure.check} failed (rows are kept)")
            continue
        # A value that cannot be coerced also fails the dtype check; one reason per cell is enough.
        if failure.check.startswith("dtype("):
            continue
        reason = f"{failure.column}: {failure.check} failed (value {failure.value!r})"
        reasons.setdefault(failure.row, []).append(reason)
    return reasons, warnings


def _row_hashes(frame: pd.DataFrame) -> pd.Series:
    import pandas as pd

    return pd.util.hash_pandas_object(frame.loc[:, list(COLUMNS)], index=False)


def _ingest(
    settings: Settings,
    batch: pd.DataFrame,
    *,
    source: str,
    sha256: str,
    rejected: pd.DataFrame | None = None,
    warnings: list[str] | None = None,
) -> IngestResult:
    """Validate ``batch`` (canonical columns plus any context columns), quarantine, dedup, snapshot."""
    import pandas as pd

    from diabetes_mlops.data import merge_batches
    from diabetes_mlops.datasets import training_data
    from diabetes_mlops.snapshots import commit

    n_rejected = 0 if rejected is None else len(rejected)
    result = IngestResult(source, sha256, n_rows=len(batch) + n_rejected, warnings=list(warnings or []))
    batch = batch.reset_index(drop=True)
    progress.update(f"validating {len(batch)} rows")
    reasons, distribution = row_reasons(batch.loc[:, list(COLUMNS)], source) if len(batch) else ({}, [])
    result.warnings += distribution
    bad = sorted(reasons)
    quarantined = [rejected] if rejected is not None and len(rejected) else []
    if bad:
        quarantined.append(batch.loc[bad].assign(**{REASON: ["; ".join(reasons[i]) for i in bad]}))
    valid = batch.drop(index=bad).loc[:, list(COLUMNS)].astype("float64")
    result.n_valid = len(valid)
    result.n_quarantined = sum(len(q) for q in quarantined)
    progress.update("looking for rows already in the dataset")
    base = training_data(settings)
    seen = set(_row_hashes(base).tolist())
    hashes = _row_hashes(valid)
    fresh = (~hashes.isin(seen) & ~hashes.duplicated()).to_numpy()
    new_rows = valid.loc[fresh]
    result.n_added = len(new_rows)
    result.n_duplicates = result.n_valid - result.n_added
    if quarantined:
        result.quarantine_file = quarantine_dir(settings) / f"{sha256[:12]}.csv"
        write_quarantine(result.quarantine_file, pd.concat(quarantined, ignore_index=True))
    record = {
        "source": source,
        "sha256": sha256,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        **{k: v for k, v in result.to_dict().items() if k.startswith("n_")},
        "quarantine_file": str(result.quarantine_file) if result.quarantine_file else None,
    }
    progress.update(f"writing a snapshot with {len(new_rows)} new rows" if len(new_rows) else "recording the batch")
    merged = merge_batches(base, new_rows) if len(new_rows) else None
    result.snapshot = commit(settings, record, merged)
    return result


def write_quarantine(path: Path, frame: pd.DataFrame) -> None:
    """The rejected rows as CSV, ``row`` (position in the batch) and ``reason`` first for a reader."""
    from diabetes_mlops.files import write_atomic

    front = [c for c in (ROW, REQUEST_ID, REASON) if c in frame.columns]
    frame = frame.loc[:, [*front, *(c for c in frame.columns if c not in front)]]
    write_atomic(path, frame.to_csv(index=False).encode())


def ingest_file(settings: Settings, path: Path) -> IngestResult:
    """Ingest a CSV/Parquet batch with every feature and ``target``; a file seen before adds nothing."""
    from diabetes_mlops.data import read_table
    from diabetes_mlops.files import sha256_file
    from diabetes_mlops.snapshots import ingested_batch, lock

    path = Path(path)
    progress.update(f"reading {path.name}")
    frame = read_table(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column {', '.join(missing)}: nothing ingested")
    sha256 = sha256_file(path)
    ignored = [str(c) for c in frame.columns if c not in COLUMNS]
    warnings = [f"ignored columns: {', '.join(ignored)}"] if ignored else []
    batch = frame.loc[:, list(COLUMNS)].reset_index(drop=True)
    batch.insert(0, ROW, range(len(batch)))
    with lock(settings):
        if ingested_batch(settings, sha256) is not None:
            return IngestResult(str(path), sha256, n_rows=len(frame), already_ingested=True)
        return _ingest(settings, batch, source=str(path), sha256=sha256, warnings=warnings)


def join_labels(labels: pd.DataFrame, sink: LogSink) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labelled rows from labels (``request_id``, ``target``, optional ``row``) and logged inputs.

    Returns the joined rows (``row``, ``request_id``, features, ``target``) and the labels that could not
    be joined, each with its reason: no logged request with that id, or no such row in the request.
    """
    import pandas as pd

    positions = pd.to_numeric(labels[ROW], errors="coerce") if ROW in labels else pd.Series(0, index=labels.index)
    wanted = set(labels[REQUEST_ID].astype(str))
    logged: dict[str, list[list[float]]] = {}
    for record in sink.read():
        request_id = str(record.get(REQUEST_ID))
        if request_id in wanted:
            logged[request_id] = record["inputs"]  # type: ignore[assignment]
    joined: list[dict[str, object]] = []
    rejected: list[dict[str, object]] = []
    for i, (request_id, position, target) in enumerate(
        zip(labels[REQUEST_ID].astype(str), positions, labels[TARGET], strict=True)
    ):
        entry = {ROW: i, REQUEST_ID: request_id}
        inputs = logged.get(request_id)
        if inputs is None:
            rejected.append({**entry, TARGET: target, REASON: "no logged scoring request with this request_id"})
        elif pd.isna(position) or not float(position).is_integer() or not 0 <= int(position) < len(inputs):
            reason = f"the logged request has rows 0..{len(inputs) - 1}, not row {position!r}"
            rejected.append({**entry, TARGET: target, REASON: reason})
        else:
            joined.append({**entry, **dict(zip(FEATURES, inputs[int(position)], strict=True)), TARGET: target})
    columns = [ROW, REQUEST_ID, *COLUMNS]
    return pd.DataFrame(joined, columns=columns), pd.DataFrame(rejected, columns=[ROW, REQUEST_ID, TARGET, REASON])


def ingest_labels(settings: Settings, path: Path, sink: LogSink | None = None) -> IngestResult:
    """Join a labels file with the logged scoring inputs and ingest the labelled rows like a batch."""
    from diabetes_mlops.data import read_table
    from diabetes_mlops.files import sha256_file
    from diabetes_mlops.monitoring.sinks import open_log_sink
    from diabetes_mlops.snapshots import ingested_batch, lock

    path = Path(path)
    labels = read_table(path)
    missing = [c for c in (REQUEST_ID, TARGET) if c not in labels.columns]
    if missing:
        raise DataError(f"{path}: no column {', '.join(missing)}: a labels file has request_id and target")
    sha256 = sha256_file(path)
    with lock(settings):
        if ingested_batch(settings, sha256) is not None:
            return IngestResult(str(path), sha256, n_rows=len(labels), already_ingested=True)
        progress.update("joining the labels with the logged requests")
        joined, rejected = join_labels(labels, sink if sink is not None else open_log_sink(settings))
        return _ingest(settings, joined, source=str(path), sha256=sha256, rejected=rejected)
