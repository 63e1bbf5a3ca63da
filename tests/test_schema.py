"""The schema accepts the valid space and rejects each class of defect, naming the column."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from diabetes_mlops.data import COLUMNS, FEATURES, load_builtin
from diabetes_mlops.schema import ReferenceStats, build_schema, reference_stats, validate_file, validate_frame
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
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    values = {(f["row"], f["check"]): f["value"] for f in data["failures"]}
    assert values[(0, "finite")] == "inf" and values[(3, "not_nullable")] == "nan"
    assert values[(4, "in_range(4.0, 94.0)")] == 500.0 and values[(1, "in_range(4.0, 94.0)")] == 1.0


# The ranges docs/architecture.md states (the observed range widened by a quarter of its span on each side),
# pinned here rather than read back from the code under test.
DOCUMENTED_BOUNDS = {"age": (4.0, 94.0), "bmi": (11.95, 48.25), "s5": (2.545875, 6.819225), "target": (-55.25, 426.25)}


@pytest.mark.parametrize(("column", "bounds"), DOCUMENTED_BOUNDS.items())
def test_values_at_the_documented_bounds_pass_and_beyond_them_fail(column: str, bounds: tuple[float, float]) -> None:
    lo, hi = bounds
    frame = load_builtin().head(4).copy()
    frame.loc[0, column], frame.loc[1, column] = lo, hi
    assert validate_frame(frame).ok
    frame.loc[2, column], frame.loc[3, column] = lo - 0.01, hi + 0.01
    failed = {f.row for f in validate_frame(frame).failures if f.column == column and f.check.startswith("in_range")}
    assert failed == {2, 3}


def test_distribution_checks_start_at_50_rows() -> None:
    frame = load_builtin()
    frame["s5"] = frame["s5"] + frame["s5"].std()
    assert validate_frame(frame.head(49)).ok
    assert [f.check for f in validate_frame(frame.head(50)).failures] == ["mean_near_reference"]


@pytest.mark.parametrize(("factor", "passes"), [(0.45, False), (0.55, True), (1.9, True), (2.1, False)])
def test_the_spread_may_be_half_to_twice_the_reference(factor: float, passes: bool) -> None:
    frame = load_builtin()
    mean = frame["s3"].mean()
    frame["s3"] = mean + (frame["s3"] - mean) * factor
    checks = {f.check for f in validate_frame(frame).failures if f.column == "s3"}
    assert ("std_near_reference" not in checks) is passes


@pytest.mark.parametrize(("shift", "passes"), [(0.45, True), (0.55, False)])
def test_the_mean_may_move_half_a_reference_std(shift: float, passes: bool) -> None:
    frame = load_builtin()
    frame["s3"] = frame["s3"] + shift * frame["s3"].std()
    checks = {f.check for f in validate_frame(frame).failures if f.column == "s3"}
    assert ("mean_near_reference" not in checks) is passes


def test_a_report_says_what_is_wrong_in_one_line_and_lists_at_most_the_limit() -> None:
    frame = load_builtin().head(30).copy()
    frame.loc[:24, "age"] = 500.0
    report = validate_frame(frame, source="t.csv")
    assert not report.ok and len(report.failures) == 25 and report.missing_columns == []
    first = "row 0, column 'age': check in_range(4.0, 94.0) failed (value 500.0)"
    assert report.one_line() == f"t.csv: 30 rows, {first} (and 24 more)"
    lines = report.summary().splitlines()  # at most 20 by default
    assert lines[:2] == ["t.csv: 30 rows, 25 failed checks", f"  {first}"] and len(lines) == 22
    assert lines[-1] == "  ... and 5 more (see the JSON report)"
    assert len(report.summary(limit=25).splitlines()) == 26
    assert validate_frame(frame.head(1), source="t.csv").one_line() == f"t.csv: 1 rows, {first}"
    assert {k: v for k, v in report.to_dict().items() if k != "failures"} == {
        "source": "t.csv",
        "ok": False,
        "n_rows": 30,
        "n_failures": 25,
    }
    clean = validate_frame(load_builtin().head(5), source="ok.csv")
    assert clean.ok and clean.one_line() == clean.summary() == "ok.csv: 5 rows, all checks passed"
    assert validate_frame(load_builtin().head(5)).source == "frame"


def test_missing_columns_are_named_before_anything_else() -> None:
    frame = load_builtin().head(5).drop(columns=["bmi", "s3"]).assign(age=500.0)
    report = validate_frame(frame, source="m.csv")
    assert report.missing_columns == ["bmi", "s3"]
    assert report.one_line() == "m.csv: no column bmi, s3"
    assert report.failures[0].describe() == "no column bmi (check column_in_dataframe)"


def test_a_text_value_is_one_failure_on_its_row_without_echoes_for_its_column() -> None:
    frame = load_builtin().head(5).astype({"bp": object})
    frame.loc[3, "bp"] = "high"
    report = validate_frame(frame)
    assert (3, "bp", "coerce_dtype('float64')", "high") in [
        (f.row, f.column, f.check, f.value) for f in report.failures
    ]
    assert all(f.row == 3 for f in report.failures)  # no whole-column failure repeats it


def test_a_file_that_is_not_a_diabetes_table_is_one_failure_that_says_so(tmp_path: Path) -> None:
    empty = validate_file(_write(tmp_path / "e.csv", ""))
    assert [f.check for f in empty.failures] == ["readable_table"] and empty.n_rows == 0
    assert empty.one_line() == empty.failures[0].describe() == empty.failures[0].value
    other = validate_file(_csv(pd.DataFrame({"a": [1, 2]}), tmp_path / "o.csv"))
    assert [f.check for f in other.failures] == ["known_columns"] and other.n_rows == 2
    assert other.one_line() == other.failures[0].value and "not a diabetes table" in other.one_line()
    assert validate_file(_csv(load_builtin().head(3), tmp_path / "ok.csv")).ok


@pytest.mark.parametrize("ratio", [0.5, 2.0])
def test_a_spread_of_exactly_half_or_twice_the_reference_passes(ratio: float) -> None:
    frame = load_builtin()
    learnt = ReferenceStats.from_frame(frame).columns
    # Halving and doubling are exact in floating point: the batch's std is exactly at the bound.
    s3 = dataclasses.replace(learnt["s3"], std=learnt["s3"].std / ratio)
    report = validate_frame(frame, ReferenceStats({**learnt, "s3": s3}))
    assert [f.check for f in report.failures if f.column == "s3"] == []


def test_columns_in_any_order_pass_and_an_empty_table_does_not() -> None:
    frame = load_builtin().head(5)
    assert validate_frame(frame.loc[:, list(reversed(frame.columns))]).ok
    empty = validate_frame(frame.head(0)).failures
    assert [f.check for f in empty] == ["not_empty"] and empty[0].describe() == "table: check not_empty failed"
    assert set(build_schema().columns) == set(COLUMNS) and set(build_schema(with_target=False).columns) == set(FEATURES)


def test_a_mean_exactly_half_a_reference_std_away_passes() -> None:
    frame = load_builtin()
    learnt = ReferenceStats.from_frame(frame).columns
    moved = learnt["s3"].mean + 1.0
    gap = moved - learnt["s3"].mean  # exact: the two are within a factor of two of each other

    def checks(reference_mean: float) -> set[str]:
        s3 = dataclasses.replace(learnt["s3"], mean=reference_mean, std=2 * gap)
        report = validate_frame(frame, ReferenceStats({**learnt, "s3": s3}))
        return {f.check for f in report.failures if f.column == "s3"}

    assert "mean_near_reference" not in checks(moved)
    assert "mean_near_reference" in checks(float(np.nextafter(moved, np.inf)))


def test_failures_come_table_first_then_by_row_then_by_column() -> None:
    frame = load_builtin().head(10).drop(columns=["s6"])
    frame.loc[0, "s1"], frame.loc[1, "age"], frame.loc[2, "sex"], frame.loc[2, "bmi"] = 999.0, 500.0, 9.0, 99.0
    report = validate_frame(frame, source="f.csv")
    assert [(f.row, f.column) for f in report.failures] == [(None, "s6"), (0, "s1"), (1, "age"), (2, "bmi"), (2, "sex")]
    two = validate_frame(load_builtin().head(3).assign(age=[500.0, 500.0, 50.0]), source="f.csv")
    assert two.one_line().endswith("(value 500.0) (and 1 more)")
