"""Azure ML jobs on the simulated Azure run their command lines in venvs built as their environment says."""

from __future__ import annotations

import json
from pathlib import Path

from diabetes_mlops.azure.artifacts import DatastoreFiles
from diabetes_mlops.azure.clients import default_credential, ml_client
from diabetes_mlops.azure.training import train_on_azure
from diabetes_mlops.config import Settings
from tests.simazure.service import SimAzure


def test_a_training_job_runs_the_kit_from_its_wheel_and_returns_its_run(
    simazure: SimAzure, azure_settings: Settings, tmp_path: Path
) -> None:
    client = ml_client(azure_settings, enable_telemetry=False)
    files = DatastoreFiles.from_workspace(client, default_credential(azure_settings))
    run_dir = tmp_path / "runs" / "20260101T000000000000Z-simjob"
    seen: list[str] = []
    result = train_on_azure(azure_settings, client, files, run_dir, poll_seconds=0.5, on_status=seen.append)
    assert seen[-1] == "Completed", simazure.workspace.job_log(result.job_name)
    assert "Running" in seen
    train = json.loads((run_dir / "train.json").read_text())
    assert train["metrics"]["r2"] > 0.3
    assert "model.skops" in result.files
    assert simazure.gateway.refused == []
