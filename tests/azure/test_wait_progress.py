"""Waiting on Azure ML shows the job's status as it changes, one line each in a log."""

from __future__ import annotations

import io
import re

from test_training_jobs import running_job

from diabetes_mlops import progress
from diabetes_mlops.azure.jobs import wait_for_job


def test_a_job_wait_shows_each_status_once(ml_client, workspace) -> None:
    workspace.jobs["j2"] = running_job("j2")
    workspace._status_iters["j2"] = iter(["Queued", "Queued", "Running", "Completed"])
    stream = io.StringIO()
    progress.configure(True, stream)
    try:
        assert wait_for_job(ml_client, "j2", timeout=30, poll_seconds=0) == "Completed"
    finally:
        progress.configure(False)
    lines = stream.getvalue().splitlines()
    label = "Azure ML job j2"
    assert lines[:-1] == [f"{label} ...", f"{label}: Queued", f"{label}: Running", f"{label}: Completed"]
    assert re.fullmatch(rf"{label}: done in \d+\.\d s", lines[-1])
