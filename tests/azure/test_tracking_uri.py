"""On Azure ML, runs go to the workspace's MLflow tracking server, so they show in Azure ML studio."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fake_azureml import RG, SUB, WS, WS_PATH

from diabetes_mlops.config import load_settings
from diabetes_mlops.tracking import tracking_uri

WORKSPACE_URI = f"azureml://westeurope.api.azureml.ms/mlflow/v1.0{WS_PATH}"


def test_the_azureml_registry_tracks_in_the_workspace(
    ml_client, workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    answer = workspace._workspace(None)[1]
    answer["properties"]["mlFlowTrackingUri"] = WORKSPACE_URI
    workspace.transport.on("GET", WS_PATH, (200, answer))
    azure = dict(azure_subscription_id=SUB, azure_resource_group=RG, azure_workspace=WS)
    on_azure = load_settings(home=tmp_path, registry_backend="azureml", **azure)
    # azure-ai-ml rewrites the workspace's v1.0 URI to v2.0 when azureml-mlflow is installed; either is the workspace's.
    assert re.fullmatch(
        rf"azureml://westeurope\.api\.azureml\.ms/mlflow/v[12]\.0{WS_PATH}", tracking_uri(on_azure, ml_client)
    )
    assert workspace.transport.find("GET", WS_PATH)
    local = load_settings(home=tmp_path, **azure)
    assert tracking_uri(local, ml_client).startswith("sqlite:///")
