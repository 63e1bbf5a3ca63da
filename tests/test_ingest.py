"""Ingestion: valid rows become an immutable snapshot, bad rows a quarantine with reasons, twice adds nothing."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diabetes_mlops.config import Settings, load_settings
from diabetes_mlops.data import COLUMNS, FEATURES, TARGET, fingerprint, load_builtin, merge_batches
from diabetes_mlops.datasets import training_data
from diabetes_mlops.errors import DataError
from diabetes_mlops.ingest import ingest_file, ingest_labels, join_labels
from diabetes_mlops.monitoring.store import LocalLogStore
from diabetes_mlops.snapshots import read_manifest, snapshot_path
from diabetes_mlops.strategies import InvalidFrame, invalid_frames, valid_frames

# The check named in a quarantine reason for each kind of defect the strategies make.
EXPECTED_CHECK = {"null": "not_nullable", "inf": "finite", "out_of_range": "in_range", "text": "coerce_dtype"}
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def new_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` plausible labelled rows that are not in the built-in data (each value nudged off it)."""
    frame = load_builtin().sample(n, replace=True, random_state=seed).reset_index(drop=True)
    frame["s1"] += np.arange(1, n + 1) * 1e-3
    return frame


@SLOW
@given(valid_frames(), st.sampled_from(["csv", "parquet"]))
def test_ingesting_the_same_file_twice_adds_nothing(frame: pd.DataFrame, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp) / "home")
        path = Path(tmp) / f"batch.{suffix}"
        frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path)
        first = ingest_file(settings, path)
        assert first.n_rows == len(frame)
        assert first.n_added + first.n_duplicates + first.n_quarantined == first.n_rows
        assert first.n_quarantined == 0
        snapshots = read_manifest(settings)
        data = training_data(settings)
        second = ingest_file(settings, path)
        assert second.already_ingested and second.n_added == 0 and second.snapshot is None
        assert read_manifest(settings) == snapshots
        assert fingerprint(training_data(settings)) == fingerprint(data)


@SLOW
@given(invalid_frames().filter(lambda b: b.kind in EXPECTED_CHECK))
def test_a_bad_row_is_quarantined_with_its_reason_and_the_rest_join(bad: InvalidFrame) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp) / "home")
        path = Path(tmp) / "batch.csv"
        bad.frame.to_csv(path, index=False)
        result = ingest_file(settings, path)
        assert result.n_quarantined == 1
        assert result.n_added + result.n_duplicates == len(bad.frame) - 1
        quarantine = pd.read_csv(result.quarantine_file, keep_default_na=False)
        assert quarantine["row"].tolist() == [bad.row]
        reason = quarantine["reason"].iloc[0]
        assert f"{bad.column}: {EXPECTED_CHECK[bad.kind]}" in reason
        if result.n_added:
            assert result.snapshot is not None
            assert len(training_data(settings)) == len(load_builtin()) + result.n_added


def test_snapshot_is_the_dataset_plus_the_new_rows_and_matches_its_fingerprint(
    settings: Settings, tmp_path: Path
) -> None:
    batch = new_rows(25)
    batch.to_parquet(tmp_path / "b.parquet")
    result = ingest_file(settings, tmp_path / "b.parquet")
    assert result.n_added == 25 and result.snapshot is not None and result.snapshot.number == 1
    expected = merge_batches(load_builtin(), batch)
    stored = pd.read_parquet(snapshot_path(settings, result.snapshot))
    assert fingerprint(stored) == fingerprint(expected) == result.snapshot.fingerprint
    assert result.snapshot.file.startswith("000001-" + result.snapshot.fingerprint[:12])
    assert fingerprint(training_data(settings)) == result.snapshot.fingerprint


def test_rows_already_in_the_dataset_are_not_added_again(settings: Settings, tmp_path: Path) -> None:
    batch = new_rows(10, seed=1)
    batch.to_csv(tmp_path / "a.csv", index=False)
    assert ingest_file(settings, tmp_path / "a.csv").n_added == 10
    # The same rows in another file (other bytes), twice over, plus built-in rows: all duplicates.
    again = pd.concat([batch, batch, load_builtin().head(5)], ignore_index=True)
    again.to_parquet(tmp_path / "again.parquet")
    result = ingest_file(settings, tmp_path / "again.parquet")
    assert not result.already_ingested
    assert (result.n_added, result.n_duplicates) == (0, 25)
    assert result.snapshot is None and len(read_manifest(settings)) == 1


def test_a_shifted_batch_is_kept_with_a_warning(settings: Settings, tmp_path: Path) -> None:
    batch = new_rows(80, seed=2)
    batch["bmi"] = batch["bmi"].max()  # every value in range, but the column's spread is gone
    batch.to_csv(tmp_path / "b.csv", index=False)
    result = ingest_file(settings, tmp_path / "b.csv")
    assert result.n_added == 80 and result.n_quarantined == 0
    assert any("bmi" in w and "std_near_reference" in w for w in result.warnings)


def test_a_file_without_a_needed_column_is_an_error(settings: Settings, tmp_path: Path) -> None:
    new_rows(5).drop(columns=[TARGET]).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(DataError, match="target"):
        ingest_file(settings, tmp_path / "b.csv")
    assert read_manifest(settings) == []


def test_extra_columns_are_ignored_and_named(settings: Settings, tmp_path: Path) -> None:
    new_rows(5).assign(patient="x").to_csv(tmp_path / "b.csv", index=False)
    result = ingest_file(settings, tmp_path / "b.csv")
    assert result.n_added == 5
    assert result.warnings == ["ignored columns: patient"]


def log_requests(settings: Settings, requests: dict[str, list[list[float]]]) -> None:
    LocalLogStore(settings.logs_dir).write(
        {
            "request_id": request_id,
            "time": "2026-01-01T00:00:00.000000+00:00",
            "model_name": "diabetes",
            "model_version": 1,
            "inputs": rows,
            "predictions": [100.0] * len(rows),
            "latency_ms": 1.0,
            "traceparent": None,
        }
        for request_id, rows in requests.items()
    )


def test_labels_join_the_logged_inputs(settings: Settings) -> None:
    rows = new_rows(3, seed=4).loc[:, list(FEATURES)].to_numpy().tolist()
    log_requests(settings, {"a": [rows[0]], "b": [rows[1], rows[2]]})
    labels = pd.DataFrame({"request_id": ["a", "b", "b", "zz", "a"], "row": [0, 1, 0, 0, 3], "target": [1, 2, 3, 4, 5]})
    joined, rejected = join_labels(labels, LocalLogStore(settings.logs_dir))
    assert joined["request_id"].tolist() == ["a", "b", "b"]
    assert joined.loc[:, list(FEATURES)].to_numpy().tolist() == [rows[0], rows[2], rows[1]]
    assert joined[TARGET].tolist() == [1, 2, 3]
    assert rejected["request_id"].tolist() == ["zz", "a"]
    assert "no logged scoring request" in rejected["reason"].iloc[0]
    assert "rows 0..0" in rejected["reason"].iloc[1]


def test_cli_ingests_labels_and_says_how_many(settings: Settings, cli: Callable[..., object], tmp_path: Path) -> None:
    rows = new_rows(4, seed=5).loc[:, list(FEATURES)].to_numpy().tolist()
    log_requests(settings, {f"r{i}": [row] for i, row in enumerate(rows)})
    labels = pd.DataFrame({"request_id": ["r0", "r1", "r2", "r3", "lost"], "target": [100, 120, 9999, 140, 90]})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    done = cli("--json", "ingest", "--labels", str(tmp_path / "labels.csv"))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["n_rows"], data["n_added"], data["n_quarantined"]) == (5, 3, 2)
    quarantine = pd.read_csv(data["quarantine_file"])
    reasons = dict(zip(quarantine["request_id"], quarantine["reason"], strict=True))
    assert "no logged scoring request" in reasons["lost"]
    assert "target: in_range" in reasons["r2"]
    frame = training_data(settings)
    assert frame.tail(3)[TARGET].tolist() == [100.0, 120.0, 140.0]
    assert frame.tail(3).loc[:, list(FEATURES)].to_numpy().tolist() == [rows[0], rows[1], rows[3]]
    again = cli("ingest", "--labels", str(tmp_path / "labels.csv"))
    assert again.returncode == 0 and "already ingested" in again.stdout
    assert len(read_manifest(settings)) == 1


def test_cli_reports_counts_and_rejects_a_missing_argument(cli: Callable[..., object], tmp_path: Path) -> None:
    batch = new_rows(6, seed=6).astype({"age": "object"})
    batch.loc[2, "age"] = "old"
    batch.to_csv(tmp_path / "b.csv", index=False)
    done = cli("ingest", str(tmp_path / "b.csv"))
    assert done.returncode == 0, done.stderr
    assert "6 rows: 5 added, 1 quarantined, 0 already in the dataset" in done.stdout
    assert "snapshot 1" in done.stdout
    assert cli("ingest").returncode == 2
    missing = cli("ingest", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "no such file" in missing.stderr


def test_columns_stay_canonical(settings: Settings, tmp_path: Path) -> None:
    new_rows(3, seed=7).loc[:, list(reversed(COLUMNS))].to_csv(tmp_path / "b.csv", index=False)
    result = ingest_file(settings, tmp_path / "b.csv")
    assert list(pd.read_parquet(snapshot_path(settings, result.snapshot)).columns) == list(COLUMNS)


def test_ingest_labels_with_no_logs_quarantines_every_label(settings: Settings, tmp_path: Path) -> None:
    pd.DataFrame({"request_id": ["a", "b"], "target": [1.0, 2.0]}).to_csv(tmp_path / "l.csv", index=False)
    result = ingest_labels(settings, tmp_path / "l.csv")
    assert (result.n_rows, result.n_added, result.n_quarantined) == (2, 0, 2)
    assert result.snapshot is None


def test_the_first_snapshot_builds_on_the_configured_data_path(tmp_path: Path) -> None:
    base = load_builtin().head(100)
    base.to_csv(tmp_path / "base.csv", index=False)
    settings = load_settings(home=tmp_path / "home", data_path=tmp_path / "base.csv")
    assert len(training_data(settings)) == 100
    new_rows(7, seed=8).to_csv(tmp_path / "b.csv", index=False)
    result = ingest_file(settings, tmp_path / "b.csv")
    assert result.snapshot is not None and result.snapshot.n_rows == 107
    frame = training_data(settings)
    assert fingerprint(frame) == result.snapshot.fingerprint
    assert fingerprint(frame.head(100)) == fingerprint(load_builtin().head(100))
