"""Progress of long work: a live line on a terminal, one line per step in a log, nothing under --json."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from diabetes_mlops import progress
from diabetes_mlops.config import Settings
from diabetes_mlops.data import FEATURES, load_builtin
from tests.serving.conftest import register_model

Cli = Callable[..., subprocess.CompletedProcess[str]]
STEPS = [
    "reading batch.csv",
    "validating 20 rows",
    "looking for rows already in the dataset",
    "writing a snapshot with 20 new rows",
]


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    path = tmp_path / "batch.csv"
    load_builtin().head(20).assign(bmi=lambda frame: frame.bmi + 0.01).to_csv(path, index=False)
    return path


@pytest.fixture
def shown() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    progress.configure(True, stream)
    yield stream
    progress.configure(False)


def test_a_log_gets_one_line_per_step_and_stdout_keeps_the_result(cli: Cli, batch: Path) -> None:
    done = cli("ingest", str(batch))
    assert done.returncode == 0, done.stderr
    label = f"ingest {batch}"
    lines = done.stderr.splitlines()
    assert lines[:-1] == [f"{label} ...", *(f"{label}: {step}" for step in STEPS)]
    assert re.fullmatch(rf"{re.escape(label)}: done in \d+\.\d s", lines[-1])
    assert done.stdout.startswith(f"{batch}: 20 rows: 20 added")


def test_score_batch_in_a_log_gets_one_line_per_step(cli: Cli, settings: Settings, tmp_path: Path) -> None:
    register_model(settings)
    source, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    load_builtin().loc[:, list(FEATURES)].to_csv(source, index=False)
    done = cli("score-batch", str(source), str(out), "--model", "1", "--chunk-rows", "100", "--workers", "2")
    assert done.returncode == 0, done.stderr
    label = f"score-batch {source}"
    lines = done.stderr.splitlines()
    steps = ["scoring chunks of 100 rows on 2 threads", f"writing {out} from 5 chunks"]
    assert lines[:-1] == [f"{label} ...", *(f"{label}: {step}" for step in steps)]  # no line per chunk
    assert re.fullmatch(rf"{re.escape(label)}: done in \d+\.\d s", lines[-1])
    assert done.stdout.startswith(f"{source}: 442 rows: 442 scored")


def test_json_output_has_no_progress(cli: Cli, batch: Path) -> None:
    done = cli("--json", "ingest", str(batch))
    assert done.returncode == 0 and done.stderr == ""
    assert json.loads(done.stdout)["n_added"] == 20


def test_a_terminal_gets_one_line_redrawn_in_place(home: Path) -> None:
    leader, follower = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-m", "diabetes_mlops", "--home", str(home), "drift"],
        stdout=subprocess.PIPE,
        stderr=follower,
        timeout=120,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed once the command ended and all was read
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert done.returncode == 0
    text = shown.decode()
    frames = text.split("\r\x1b[K")
    assert frames[0] == "" and frames[1].startswith("drift report")
    assert "drift report: reading the scoring logs" in text
    assert re.fullmatch(r"drift report: done in \d+\.\d s\r\n", frames[-1])
    assert text.count("\n") == 1  # every step drew over the same line


def test_a_failed_task_says_so(shown: io.StringIO) -> None:
    with pytest.raises(RuntimeError), progress.task("upload") as task:
        progress.update("sending")
        task.advance(3)
        raise RuntimeError("cut")
    lines = shown.getvalue().splitlines()
    assert lines[:2] == ["upload ...", "upload: sending"]
    assert re.fullmatch(r"upload: failed after \d+\.\d s", lines[2]) and len(lines) == 3
    progress.update("after the task")  # no task open: nothing is shown
    assert len(shown.getvalue().splitlines()) == 3


def test_the_python_api_prints_no_progress(capsys: pytest.CaptureFixture[str]) -> None:
    with progress.task("quiet") as task:
        task.update("a step")
    assert capsys.readouterr() == ("", "")
