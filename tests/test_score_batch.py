"""``score-batch``: every valid row scored once with its row id, the rest rejected with reasons, resumable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diabetes_mlops.batch import score_batch
from diabetes_mlops.config import Settings
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.registry.local import LocalRegistry
from diabetes_mlops.serving.model import ServedModel
from tests.conftest import CliResult
from tests.serving.conftest import register_model


def features(n: int, seed: int = 0) -> pd.DataFrame:
    return load_builtin().loc[:, list(FEATURES)].sample(n, replace=True, random_state=seed).reset_index(drop=True)


def expected(settings_: Settings, frame: pd.DataFrame) -> np.ndarray:
    return LocalRegistry(settings_.registry_dir).load(settings_.model_name, 1).predict(frame.astype("float64"))


def test_cli_scores_valid_rows_and_rejects_the_rest(
    cli: Callable[..., CliResult], settings: Settings, tmp_path: Path
) -> None:
    register_model(settings)
    frame = features(1000).astype(object)
    frame.loc[3, "bmi"], frame.loc[10, "age"], frame.loc[999, "s5"] = "abc", None, 1e9
    frame.to_csv(tmp_path / "in.csv", index=False)
    done = cli(
        "--json",
        "score-batch",
        str(tmp_path / "in.csv"),
        str(tmp_path / "out.csv"),
        "--model",
        "1",
        "--chunk-rows",
        "300",
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr  # no progress under --json
    result = json.loads(done.stdout)
    assert (result["n_rows"], result["n_scored"], result["n_rejected"], result["n_chunks"]) == (1000, 997, 3, 4)
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["row_id", "prediction", "model_version"] and set(out["model_version"]) == {1}
    valid = [i for i in range(1000) if i not in (3, 10, 999)]
    assert out["row_id"].tolist() == valid
    np.testing.assert_allclose(out["prediction"], expected(settings, frame.loc[valid]), rtol=1e-9)
    rejects = pd.read_csv(result["rejects_file"])
    assert rejects["row"].tolist() == [3, 10, 999]
    assert rejects["reason"].str.split(":").str[0].tolist() == ["bmi", "age", "s5"]
    assert "in_range" in rejects["reason"][2] and not (tmp_path / "out.csv.parts").exists()


def test_missing_columns_and_missing_files_are_one_line_errors(
    cli: Callable[..., CliResult], settings: Settings, tmp_path: Path
) -> None:
    register_model(settings)
    features(10).drop(columns=["s6"]).to_csv(tmp_path / "in.csv", index=False)
    done = cli("score-batch", str(tmp_path / "in.csv"), str(tmp_path / "out.parquet"), "--model", "1")
    assert done.returncode == 1 and "no column s6" in done.stderr and "Traceback" not in done.stderr
    gone = cli("score-batch", str(tmp_path / "nope.csv"), str(tmp_path / "out.parquet"), "--model", "1")
    assert gone.returncode == 1 and "no such file" in gone.stderr


def test_a_killed_run_resumes_to_a_complete_output(settings: Settings, tmp_path: Path) -> None:
    register_model(settings)
    frame = features(400_000)
    frame.loc[123_456, "bp"] = np.nan
    frame.to_parquet(tmp_path / "in.parquet", row_group_size=50_000)
    out, parts = tmp_path / "out.parquet", tmp_path / "out.parquet.parts"
    args = [sys.executable, "-m", "diabetes_mlops", "--home", str(settings.home), "--json", "score-batch",
            str(tmp_path / "in.parquet"), str(out), "--model", "1", "--chunk-rows", "2000",
            "--workers", "1"]  # fmt: skip
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(parts.glob("part-*.arrow"))) < 5:
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before = len(list(parts.glob("part-*.arrow")))
    assert not out.exists() and 5 <= done_before < 200
    second = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["n_chunks"] == 200 and result["n_chunks_resumed"] >= done_before
    assert (result["n_scored"], result["n_rejected"]) == (399_999, 1)
    table = pq.read_table(out)
    row_ids = table.column("row_id").to_numpy()
    assert len(row_ids) == len(np.unique(row_ids)) == 399_999 and 123_456 not in row_ids
    assert np.array_equal(row_ids, np.delete(np.arange(400_000), 123_456))
    np.testing.assert_allclose(
        table.column("prediction").to_numpy(), expected(settings, frame.drop(index=123_456)), rtol=1e-9
    )
    assert not parts.exists()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from diabetes_mlops.config import load_settings

    home_settings = load_settings(home=tmp_path_factory.mktemp("batch-home"))
    version = register_model(home_settings)
    return home_settings.registry_dir / home_settings.model_name / str(version)


@pytest.fixture(scope="module")
def served(model_dir: Path) -> ServedModel:
    return ServedModel.from_dir(model_dir)


CLEAN_RUN = """
import json, sys
from pathlib import Path
from diabetes_mlops.batch import score_batch
from diabetes_mlops.serving.model import ServedModel
score_batch(Path(sys.argv[1]), Path(sys.argv[2]), ServedModel.from_dir(Path(sys.argv[3])))
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & {"pandas", "scipy", "sklearn"})))
"""


def test_a_clean_file_is_scored_without_importing_pandas_or_scikit_learn(model_dir: Path, tmp_path: Path) -> None:
    """Their imports cost more start-up than scoring a million rows; only rejected rows need pandas."""
    source, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    features(100).to_parquet(source)
    done = subprocess.run([sys.executable, "-c", CLEAN_RUN, str(source), str(out), str(model_dir)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(done.stdout) == [] and pq.read_table(out).num_rows == 100


BAD = st.sampled_from([np.nan, np.inf, -1e12, 1e12, None])


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 60),
    bad_cells=st.lists(st.tuples(st.integers(0, 59), st.sampled_from(FEATURES), BAD), max_size=8),
    chunk_rows=st.integers(1, 25),
)
def test_every_row_is_scored_or_rejected_exactly_once(
    served: ServedModel,
    tmp_path_factory: pytest.TempPathFactory,
    n: int,
    bad_cells: list[tuple[int, str, object]],
    chunk_rows: int,
) -> None:
    work = tmp_path_factory.mktemp("batch")
    frame = features(n, seed=n)
    bad_rows = set()
    for row, column, value in bad_cells:
        if row < n:
            frame.loc[row, column] = value
            bad_rows.add(row)
    frame.to_parquet(work / "in.parquet")
    result = score_batch(work / "in.parquet", work / "out.parquet", served, chunk_rows=chunk_rows, workers=2)
    scored = pq.read_table(work / "out.parquet").column("row_id").to_pylist()
    assert scored == sorted(set(range(n)) - bad_rows)
    assert result.n_rejected == len(bad_rows) and result.n_scored + result.n_rejected == n
    if bad_rows:
        assert sorted(pd.read_csv(result.rejects_file)["row"]) == sorted(bad_rows)
