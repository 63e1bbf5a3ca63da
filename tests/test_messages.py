"""What a newcomer reads when something fails: exit 1 is one line on stderr that says what to do next."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from diabetes_mlops.config import load_settings
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.schema import validate_frame
from tests.conftest import CliResult, free_port
from tests.serving.conftest import register_model

Cli = Callable[..., CliResult]


def one_error_line(result: CliResult) -> str:
    """The failure's one ``error:`` line: exit 1, that line last on stderr, no traceback (progress lines, one
    per step when stderr is a log rather than a terminal, may come before it)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


def test_smoke_test_failure_goes_to_stderr(cli: Cli) -> None:
    result = cli("smoke-test", f"http://127.0.0.1:{free_port()}", "--timeout", "1")
    line = one_error_line(result)
    assert line.startswith("error: smoke test FAILED") and result.stdout == ""


def test_smoke_test_refuses_a_url_without_scheme_at_once(cli: Cli) -> None:
    # The default readiness wait is 60 s; the subprocess timeout would fire if the URL were tried.
    line = one_error_line(cli("smoke-test", "localhost:8000", timeout=30))
    assert "'localhost:8000' is not a URL" in line and "http://localhost:8000" in line


def test_smoke_test_on_a_closed_local_port_fails_at_once(cli: Cli) -> None:
    port = free_port()
    line = one_error_line(cli("smoke-test", f"http://127.0.0.1:{port}", timeout=30))
    assert f"nothing listens on 127.0.0.1:{port}" in line and "endpoints" in line


def frame_with(cell: float, rows: int) -> pd.DataFrame:
    frame = load_builtin().head(rows).copy()
    frame.loc[3, "bmi"] = cell
    return frame


def test_an_inf_cell_is_one_line_without_numpy_warnings(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "inf.csv"
    frame_with(math.inf, 100).to_csv(path, index=False)
    line = one_error_line(cli("train", "--data", str(path)))
    assert "row 3, column 'bmi': check finite failed" in line and "validation.json" in line


@hypothesis_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell=st.sampled_from([math.inf, -math.inf, math.nan]), row=st.integers(0, 99), column=st.sampled_from(FEATURES))
def test_non_finite_cells_fail_their_row_and_warn_nothing(cell: float, row: int, column: str) -> None:
    frame = load_builtin().head(100).copy()
    frame.loc[row, column] = cell
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = validate_frame(frame)
    assert not report.ok
    assert {(f.row, f.column) for f in report.failures} == {(row, column)}


def test_validate_data_names_a_missing_column_plainly(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "nobmi.csv"
    load_builtin().head(20).drop(columns=["bmi"]).to_csv(path, index=False)
    line = one_error_line(cli("validate-data", str(path)))
    assert line.startswith(f"error: {path}: no column bmi")
    ingest = one_error_line(cli("ingest", str(path)))
    assert ingest.startswith(f"error: {path}: no column bmi")


def test_deploy_before_any_model_says_to_retrain(cli: Cli) -> None:
    line = one_error_line(cli("deploy", "--env", "qa"))
    assert "run `diabetes-mlops retrain` first" in line


def test_a_bad_variable_is_named_without_a_usage_banner(cli: Cli) -> None:
    result = cli("endpoints", env={"DIABETES_MLOPS_ALPHA": "lots"})
    assert result.returncode == 2 and "Usage" not in result.stderr
    assert result.stderr.splitlines() == ["error: DIABETES_MLOPS_ALPHA: setting 'alpha' expects float, got 'lots'"]


def test_a_bad_file_value_names_the_file(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "mlops.toml"
    config.write_text("alpha = -1\n")
    result = cli("--config", str(config), "endpoints")
    assert result.returncode == 2 and "Usage" not in result.stderr
    assert result.stderr.splitlines() == [f"error: {config}: setting 'alpha' has an invalid value: -1.0"]


def test_package_refuses_a_tampered_model_or_affine_map(cli: Cli, home: Path) -> None:
    settings = load_settings(home=home)
    version = register_model(settings)
    out = home / "bundle"
    for name in ("affine.json", "model.skops"):
        changed = settings.registry_dir / settings.model_name / str(version) / name
        changed.write_bytes(changed.read_bytes() + b"\0")
        line = one_error_line(cli("package", "--model", str(version), "--out", str(out)))
        assert "checksum mismatch" in line and str(changed) in line
        assert not out.exists()
