"""Drift: PSI and KS behave (identical never drifts, a real shift always does) and the report closes the loop."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from diabetes_mlops.config import Settings
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.errors import MlopsError
from diabetes_mlops.monitoring.drift import (
    PREDICTION,
    STATUS_DRIFT,
    STATUS_OK,
    STATUS_TOO_FEW,
    Thresholds,
    compare_column,
    drift_report,
    parse_since,
    read_logged_rows,
)
from diabetes_mlops.monitoring.statistics import psi
from diabetes_mlops.monitoring.store import LocalLogStore
from diabetes_mlops.monitoring.verdict import Verdict
from diabetes_mlops.pipelines import retrain
from diabetes_mlops.registry import open_registry

THRESHOLDS = Thresholds(psi=0.2, ks_pvalue=0.01, min_rows=100)


def log_rows(
    settings: Settings, rows: np.ndarray, *, when: datetime | None = None, per_request: int = 1, version: int = 1
) -> None:
    """Write ``rows`` to the home's log store as scoring records of ``per_request`` rows each.

    Predictions are the champion's, as the scoring service would log them (150 when there is none).
    """
    time = (when or datetime.now(UTC)).isoformat(timespec="microseconds")
    registry = open_registry(settings)
    if registry.aliases(settings.model_name).get("champion"):
        model = registry.load(settings.model_name, "champion")
        predictions = model.predict(pd.DataFrame(rows, columns=list(FEATURES))).tolist()
    else:
        predictions = [150.0] * len(rows)
    records = []
    for start in range(0, len(rows), per_request):
        chunk = rows[start : start + per_request].tolist()
        records.append(
            {
                "request_id": f"req-{start}",
                "time": time,
                "model_name": "diabetes",
                "model_version": version,
                "inputs": chunk,
                "predictions": predictions[start : start + per_request],
                "latency_ms": 1.0,
                "traceparent": None,
            }
        )
    LocalLogStore(settings.logs_dir).write(records)


def builtin_features(n: int, seed: int) -> np.ndarray:
    """``n`` rows resampled from the built-in data: the champion's own population."""
    frame = load_builtin().sample(n, replace=True, random_state=seed)
    return frame.loc[:, list(FEATURES)].to_numpy(dtype="float64").copy()


@settings(max_examples=100, deadline=None)
@given(
    arrays(
        "float64",
        st.integers(1, 600),
        elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    ),
    st.randoms(use_true_random=False),
)
def test_identical_samples_never_drift(values: np.ndarray, rnd: object) -> None:
    shuffled = values.copy()
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    result = compare_column("x", values, shuffled, THRESHOLDS)
    assert result.psi == pytest.approx(0.0, abs=1e-12)
    assert result.ks_statistic == 0.0
    assert result.ks_pvalue == pytest.approx(1.0)
    assert not result.drifted


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_reference=st.integers(100, 2000),
    n_current=st.integers(100, 2000),
    mean=st.floats(-1e3, 1e3),
    scale=st.floats(1e-3, 1e3),
    shift=st.floats(1.5, 20.0),
    direction=st.sampled_from([-1.0, 1.0]),
)
def test_a_mean_shifted_beyond_the_threshold_always_drifts(
    seed: int, n_reference: int, n_current: int, mean: float, scale: float, shift: float, direction: float
) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(mean, scale, n_reference)
    current = rng.normal(mean + direction * shift * scale, scale, n_current)
    result = compare_column("x", reference, current, THRESHOLDS)
    assert result.psi >= THRESHOLDS.psi
    assert result.ks_pvalue < THRESHOLDS.ks_pvalue
    assert result.drifted


def test_psi_matches_the_formula_on_a_hand_worked_case() -> None:
    reference = np.arange(1000, dtype="float64")  # ten equal bins of 100 values each
    current = np.concatenate([np.full(50, 10.0), np.full(50, 950.0)])  # half in the first bin, half in the last
    expected_share, floor = 0.1, 1e-4
    terms = 2 * (0.5 - expected_share) * np.log(0.5 / expected_share)
    terms += 8 * (floor - expected_share) * np.log(floor / expected_share)
    assert psi(reference, current) == pytest.approx(terms, rel=1e-9)


def test_psi_of_a_single_logged_value_counts_it_as_the_whole_sample() -> None:
    reference = np.arange(1000, dtype="float64")
    expected = (1.0 - 0.1) * np.log(1.0 / 0.1) + 9 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    assert psi(reference, np.array([950.0])) == pytest.approx(expected, rel=1e-9)


def test_a_column_drifts_at_the_psi_threshold_and_below_the_ks_threshold_not_at_it() -> None:
    """The documented rule: PSI at or above its threshold, and a KS p-value strictly below its threshold."""
    rng = np.random.default_rng(1)
    reference, current = rng.normal(0.0, 1.0, 500), rng.normal(1.0, 1.0, 500)
    measured = compare_column("x", reference, current, THRESHOLDS)
    at_psi = Thresholds(psi=measured.psi, ks_pvalue=THRESHOLDS.ks_pvalue, min_rows=100)
    assert compare_column("x", reference, current, at_psi).drifted
    above_psi = Thresholds(psi=float(np.nextafter(measured.psi, np.inf)), ks_pvalue=0.01, min_rows=100)
    assert not compare_column("x", reference, current, above_psi).drifted
    at_ks = Thresholds(psi=0.2, ks_pvalue=measured.ks_pvalue, min_rows=100)
    assert not compare_column("x", reference, current, at_ks).drifted
    above_ks = Thresholds(psi=0.2, ks_pvalue=float(np.nextafter(measured.ks_pvalue, 1.0)), min_rows=100)
    assert compare_column("x", reference, current, above_ks).drifted


def test_a_column_with_few_values_gets_merged_bins_and_still_measures_a_move() -> None:
    reference = np.array([1.0] * 200 + [2.0] * 200)  # like ``sex``: two values, most quantile edges repeat
    assert compare_column("sex", reference, reference[::-1].copy(), THRESHOLDS).drifted is False
    moved = compare_column("sex", reference, np.array([2.0] * 380 + [1.0] * 20), THRESHOLDS)
    assert moved.drifted and np.isfinite(moved.psi)


def test_parse_since_reads_durations_and_times() -> None:
    now = datetime(2026, 1, 2, 12, tzinfo=UTC)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since(" 90s ", now) == now - timedelta(seconds=90)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("1.5h", now) == now - timedelta(minutes=90)
    assert parse_since("2026-01-01T00:00:00") == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(MlopsError, match="24h"):
        parse_since("yesterday")


@pytest.fixture
def champion(settings: Settings) -> Settings:
    """A home with a champion trained on the built-in data."""
    outcome = retrain(settings)
    assert outcome.registered is not None
    return settings


def test_logs_from_the_training_population_do_not_drift(champion: Settings, tmp_path: Path) -> None:
    log_rows(champion, builtin_features(600, seed=7), per_request=3)
    report = drift_report(champion, LocalLogStore(champion.logs_dir), open_registry(champion), out_dir=tmp_path / "r")
    assert report.status == STATUS_OK, report.summary()
    assert report.n_rows == 600 and report.n_requests == 200
    assert report.reference_source == "builtin" and report.reference_is_champions
    assert [c.column for c in report.columns] == [*FEATURES, PREDICTION]
    assert not list((tmp_path / "r").glob("*.png"))
    saved = json.loads((tmp_path / "r" / "drift.json").read_text())
    assert saved["status"] == "ok" and saved["drifted"] == []
    assert [c["column"] for c in saved["columns"]] == [*FEATURES, "prediction"]  # the names readers of drift.json use


def test_a_shifted_feature_is_reported_with_a_plot(champion: Settings, tmp_path: Path) -> None:
    rows = builtin_features(400, seed=3)
    rows[:, FEATURES.index("bmi")] += 8.0
    log_rows(champion, rows)
    report = drift_report(champion, LocalLogStore(champion.logs_dir), open_registry(champion), out_dir=tmp_path / "r")
    assert report.status == STATUS_DRIFT
    assert "bmi" in report.drifted
    assert set(report.drifted) <= {"bmi", PREDICTION}
    assert (tmp_path / "r" / "bmi.png").read_bytes().startswith(b"\x89PNG")
    assert "bmi.png" in (tmp_path / "r" / "drift.md").read_text()
    verdict = Verdict.last(champion)
    assert verdict is not None and verdict.status == STATUS_DRIFT and "bmi" in verdict.drifted
    assert verdict.id == report.id and verdict.report == str(tmp_path / "r" / "drift.json")


def test_too_few_rows_is_said_plainly_and_is_not_drift(champion: Settings, tmp_path: Path) -> None:
    rows = builtin_features(40, seed=1)
    rows[:, 0] += 50.0  # a huge shift, but 40 rows are below drift_min_rows
    log_rows(champion, rows)
    report = drift_report(champion, LocalLogStore(champion.logs_dir), open_registry(champion), out_dir=tmp_path / "r")
    assert report.status == STATUS_TOO_FEW == "insufficient_data"  # the status docs/monitoring.md names
    assert report.columns == [] and report.drifted == []
    assert "too few logged rows" in report.message and "40" in report.message


def test_only_logs_since_the_start_are_read(champion: Settings, tmp_path: Path) -> None:
    old = builtin_features(300, seed=2)
    old[:, FEATURES.index("s5")] += 3.0
    log_rows(champion, old, when=datetime.now(UTC) - timedelta(days=3))
    log_rows(champion, builtin_features(300, seed=4))
    since = parse_since("24h")
    report = drift_report(champion, LocalLogStore(champion.logs_dir), open_registry(champion), since=since)
    assert report.n_rows == 300
    assert report.status == STATUS_OK
    assert Path(str(report.out_dir)).parent == champion.drift_dir


def test_without_a_champion_the_current_data_is_the_reference(settings: Settings, tmp_path: Path) -> None:
    log_rows(settings, builtin_features(200, seed=5))
    report = drift_report(settings, LocalLogStore(settings.logs_dir), open_registry(settings), out_dir=tmp_path)
    assert not report.reference_is_champions
    assert any("no champion" in note for note in report.notes)
    assert any("prediction distribution is not compared" in note for note in report.notes)
    assert PREDICTION not in [c.column for c in report.columns]


def test_cli_exit_codes_are_4_on_drift_and_0_otherwise(
    champion: Settings, cli: Callable[..., object], tmp_path: Path
) -> None:
    log_rows(champion, builtin_features(300, seed=9))
    quiet = cli("drift", "--since", "1h", "--out", str(tmp_path / "quiet"))
    assert quiet.returncode == 0, quiet.stderr
    assert "no drift" in quiet.stdout
    rows = builtin_features(300, seed=10)
    rows[:, FEATURES.index("bp")] *= 1.5
    log_rows(champion, rows)
    alarm = cli("--json", "drift", "--since", "1h", "--out", str(tmp_path / "alarm"))
    assert alarm.returncode == 4, alarm.stderr
    data = json.loads(alarm.stdout)
    assert data["status"] == "drift" and "bp" in data["drifted"]
    assert (tmp_path / "alarm" / "bp.png").is_file()
    bad = cli("drift", "--since", "soon")
    assert bad.returncode == 1 and "--since" in bad.stderr


def test_malformed_logged_rows_are_an_error_not_a_report(settings: Settings) -> None:
    record = {"request_id": "x", "time": "2026-01-01T00:00:00+00:00", "model_name": "diabetes", "model_version": 1}
    LocalLogStore(settings.logs_dir).write([{**record, "inputs": [[1.0, 2.0, 3.0]], "predictions": [1.0]}])
    with pytest.raises(MlopsError, match="do not have 10 values"):
        read_logged_rows(LocalLogStore(settings.logs_dir), None)


def test_a_column_drifts_only_when_psi_and_ks_agree() -> None:
    """A large sample with a trivial shift is KS-significant but small in PSI; a small noisy one the reverse."""
    rng = np.random.default_rng(0)
    reference = rng.normal(0.0, 1.0, 20_000)
    trivial = compare_column("x", reference, rng.normal(0.08, 1.0, 20_000), THRESHOLDS)
    assert trivial.ks_pvalue < THRESHOLDS.ks_pvalue and trivial.psi < THRESHOLDS.psi and not trivial.drifted
    lumpy = np.repeat(rng.normal(0.0, 1.0, 4), 3)  # 12 values, 4 distinct: bins fill unevenly
    noisy = compare_column("x", reference, lumpy, THRESHOLDS)
    assert noisy.psi >= THRESHOLDS.psi and noisy.ks_pvalue >= THRESHOLDS.ks_pvalue and not noisy.drifted
    both = compare_column("x", reference, rng.normal(1.0, 1.0, 2_000), THRESHOLDS)
    assert both.psi >= THRESHOLDS.psi and both.ks_pvalue < THRESHOLDS.ks_pvalue and both.drifted


def test_no_logs_at_all_is_too_few_rows(champion: Settings, tmp_path: Path) -> None:
    report = drift_report(champion, LocalLogStore(champion.logs_dir), open_registry(champion), out_dir=tmp_path / "r")
    assert report.status == STATUS_TOO_FEW and report.n_rows == 0 and report.columns == []


def test_exactly_the_minimum_rows_runs_the_tests(champion: Settings, tmp_path: Path) -> None:
    rows = builtin_features(champion.drift_min_rows, seed=11)
    log_rows(champion, rows)
    report = drift_report(champion, LocalLogStore(champion.logs_dir), open_registry(champion), out_dir=tmp_path / "r")
    assert report.n_rows == champion.drift_min_rows and report.status != STATUS_TOO_FEW
    assert len(report.columns) >= len(FEATURES)


def test_a_non_numeric_logged_value_is_an_error_not_a_dropped_chunk(settings: Settings) -> None:
    record = {"request_id": "x", "time": "2026-01-01T00:00:00+00:00", "model_name": "diabetes", "model_version": 1}
    good = {**record, "inputs": [[1.0] * 10], "predictions": [1.0]}
    bad = {**record, "request_id": "y", "inputs": [[1.0] * 9 + ["high"]], "predictions": [1.0]}
    LocalLogStore(settings.logs_dir).write([good, bad, good])
    with pytest.raises(MlopsError, match="malformed inputs or predictions"):
        read_logged_rows(LocalLogStore(settings.logs_dir), None)


def test_predictions_logged_by_another_version_than_the_champion_are_noted(champion: Settings, tmp_path: Path) -> None:
    log_rows(champion, builtin_features(60, seed=12))
    log_rows(champion, builtin_features(60, seed=13), version=7)
    report = drift_report(champion, LocalLogStore(champion.logs_dir), open_registry(champion), out_dir=tmp_path / "r")
    assert report.champion_version == 1 and report.model_versions == {"1": 60, "7": 60}
    notes = [note for note in report.notes if "model versions" in note]
    assert len(notes) == 1 and "model versions 7, not the champion 1" in notes[0]


def test_logged_rows_leave_out_synthetic_requests_and_count_requests_per_version(settings: Settings) -> None:
    record = {"time": "2026-01-01T00:00:00+00:00", "model_name": "diabetes", "model_version": 1}
    store = LocalLogStore(settings.logs_dir)
    store.write(
        [
            {**record, "request_id": "a", "inputs": [[1.0] * 10, [2.0] * 10], "predictions": [1.0, 2.0]},
            {**record, "request_id": "b", "model_version": 2, "inputs": [[3.0] * 10], "predictions": [3.0]},
            {**record, "request_id": "s", "inputs": [[9.0] * 10], "predictions": [9.0], "synthetic": True},
        ]
    )
    logged = read_logged_rows(store, None)
    assert logged.inputs.tolist() == [[1.0] * 10, [2.0] * 10, [3.0] * 10]
    assert logged.predictions.tolist() == [1.0, 2.0, 3.0]
    assert logged.n_requests == 2 and logged.model_versions == {"1": 1, "2": 1}
    assert gc.isenabled()  # the collector's pause while reading ends with the read
    store.write([{**record, "request_id": "c", "inputs": [[4.0] * 10] * 2, "predictions": [4.0]}])
    with pytest.raises(MlopsError, match="5 input rows but 4 predictions"):
        read_logged_rows(store, None)
