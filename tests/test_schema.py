"""The schema accepts the valid space and rejects each class of defect, naming the column."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from diabetes_mlops.data import load_builtin
from diabetes_mlops.schema import ReferenceStats, reference_stats, validate_file, validate_frame
from diabetes_mlops.strategies import InvalidFrame, invalid_frames, valid_frames

EXPECTED_CHECK = {
    "null": "not_nullable",
    "inf": "finite",
    "out_of_range": "in_range",
    "text": "coerce_dtype",
    "missing_column": "column_in_dataframe",
    "extra_column": "column_in_schema",
}


def test_the_written_out_reference_is_the_builtin_datas() -> None:
    learnt = ReferenceStats.from_frame(load_builtin()).to_dict()
    assert reference_stats().to_dict() == {name: pytest.approx(stats, rel=1e-12) for name, stats in learnt.items()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_frames())
def test_schema_accepts_every_valid_frame(frame: pd.DataFrame) -> None:
    report = validate_frame(frame)
    assert report.ok, report.summary()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_frames(with_target=False))
def test_feature_schema_accepts_scoring_input(frame: pd.DataFrame) -> None:
    assert validate_frame(frame, with_target=False).ok


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invalid_frames())
def test_schema_rejects_each_defect_naming_column_and_check(case: InvalidFrame) -> None:
    report = validate_frame(case.frame)
    assert not report.ok
    expected = EXPECTED_CHECK[case.kind]
    matching = [f for f in report.failures if f.column == case.column and f.check.startswith(expected)]
    assert matching, report.summary()
    assert all(f.row == case.row for f in matching)


def test_builtin_data_passes() -> None:
    assert validate_frame(load_builtin()).ok


def test_distribution_checks_catch_a_shifted_mean() -> None:
    frame = load_builtin()
    frame["bmi"] = frame["bmi"] + 0.6 * frame["bmi"].std()
    report = validate_frame(frame)
    assert any(f.column == "bmi" and f.check == "mean_near_reference" for f in report.failures)


def test_distribution_checks_catch_a_collapsed_spread() -> None:
    frame = load_builtin()
    frame["s5"] = frame["s5"].mean()
    report = validate_frame(frame)
    assert [f.check for f in report.failures if f.column == "s5"] == ["std_near_reference"]


def test_small_batches_skip_distribution_checks() -> None:
    frame = load_builtin().head(10).copy()
    frame["bmi"] = 45.0
    assert validate_frame(frame).ok


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_column", "no column bmi (check column_in_dataframe)"),
        ("text_value", "row 3, column 'bp': check coerce_dtype('float64') failed (value 'high')"),
        ("nan_value", "row 1, column 's1': check not_nullable"),
        ("extra_column", "column 'notes': check column_in_schema"),
        ("empty_file", "the file is empty"),
        ("not_csv", "not a diabetes table"),
        ("ragged", "not a valid CSV table"),
        ("header_only", "check not_empty failed"),
        ("binary", "not a text CSV file"),
    ],
)
def test_validate_data_cli_names_the_problem(
    case: str, expected: str, tmp_path: Path, cli: Callable[..., object]
) -> None:
    base = load_builtin().head(20)
    path = tmp_path / f"{case}.csv"
    if case == "missing_column":
        _csv(base.drop(columns=["bmi"]), path)
    elif case == "text_value":
        _csv(base.astype({"bp": object}).assign(bp=lambda f: f.bp.where(f.index != 3, "high")), path)
    elif case == "nan_value":
        _csv(base.assign(s1=lambda f: f.s1.where(f.index != 1, np.nan)), path)
    elif case == "extra_column":
        _csv(base.assign(notes="x"), path)
    elif case == "empty_file":
        _write(path, "")
    elif case == "not_csv":
        _write(path, '{"a": 1}\n"x", "y", "z"\n1,2\n')
    elif case == "ragged":
        _write(path, "age,sex\n1,2\n1,2,3,4\n")
    elif case == "header_only":
        _write(path, ",".join(base.columns) + "\n")
    else:
        _write(path, b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01" * 10)
    report_path = tmp_path / "report.json"
    result = cli("validate-data", str(path), "--report", str(report_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    assert report["ok"] is False and report["n_failures"] >= 1


def test_validate_data_cli_passes_clean_file(tmp_path: Path, cli: Callable[..., object]) -> None:
    path = _csv(load_builtin(), tmp_path / "clean.csv")
    result = cli("--json", "validate-data", str(path), "--report", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True


def test_validate_file_report_is_json_serialisable(tmp_path: Path) -> None:
    frame = load_builtin().head(5).assign(age=[np.inf, 1.0, 2.0, np.nan, 500.0])
    report = validate_file(_csv(frame, tmp_path / "x.csv"))
    data = json.loads(json.dumps(report.to_dict()))
    assert {(f["row"], f["check"]) for f in data["failures"]} >= {(0, "finite"), (3, "not_nullable")}
