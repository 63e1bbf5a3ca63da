"""Fixtures on the simulated Azure (the ``simazure`` fixture itself is in tests/conftest.py, shared with the
executed Jenkins builds): the environment a build agent on it has, and the kit's settings there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from diabetes_mlops.config import Settings, load_settings
from tests.simazure.service import SimAzure


@pytest.fixture
def simazure_env(simazure: SimAzure, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process as a build agent on the simulated Azure (variables reset after the test)."""
    env = simazure.client_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


READ_RUN = """
import json, sys

from diabetes_mlops.azure.clients import ml_client
from diabetes_mlops.config import load_settings

# As Azure ML's docs have it: the workspace's tracking URI from azure-ai-ml, which also hands MLflow's Azure ML
# plugin its credential for that URI; then MLflow's own client.
workspace = ml_client(load_settings())
uri = workspace.workspaces.get(workspace.workspace_name).mlflow_tracking_uri

import mlflow
from mlflow.tracking import MlflowClient

mlflow.set_tracking_uri(uri)  # the plugin finds a run's artifacts through the current tracking URI
run_id, card, download = sys.argv[1:]
client = MlflowClient(uri)
run = client.get_run(run_id)
print(json.dumps({
    "uri": uri,
    "info": {"run_name": run.info.run_name, "status": run.info.status, "artifact_uri": run.info.artifact_uri},
    "params": run.data.params,
    "metrics": run.data.metrics,
    "tags": run.data.tags,
    "artifacts": sorted(a.path for a in client.list_artifacts(run_id)),
    "card": open(client.download_artifacts(run_id, card, download)).read(),
}))
"""


@pytest.fixture
def read_run(simazure_env: dict[str, str], tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Read a run of the workspace back with MLflow's own client in a new process, as a user on the build agent
    does: the tracking URI, the run's info, params, metrics, tags, artifact paths and one artifact's text."""

    def read(run_id: str, card: str) -> dict[str, Any]:
        args = [sys.executable, "-c", READ_RUN, run_id, card, str(tmp_path / "downloaded")]
        done = subprocess.run(args, env=dict(os.environ), capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)

    return read


@pytest.fixture
def azure_settings(simazure_env: dict[str, str], tmp_path: Path) -> Settings:
    """The kit's settings on the simulated Azure, read from the environment as the CLI reads them."""
    return load_settings(home=tmp_path / "home", scoring_key="smoke-key-123", azure_deploy_timeout=300.0)
