"""On Azure ML, runs go to the workspace's MLflow tracking server, so they show in Azure ML studio: a retrain with
the azureml registry on the simulated Azure, read back with MLflow's own client through the workspace's URI."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fake_azureml import WS_PATH

from diabetes_mlops import tracking
from diabetes_mlops.config import Settings
from diabetes_mlops.registry import open_registry
from diabetes_mlops.runs import MODEL_CARD, PLOTS
from tests.simazure.service import TRACKING_HOST, SimAzure

TRACKED = {
    "DIABETES_MLOPS_REGISTRY_BACKEND": "azureml",
    "DIABETES_MLOPS_MODEL_NAME": "tracked",
    "DIABETES_MLOPS_TRACKING": "true",
    "GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567",
}


def test_a_retrain_on_azure_ml_is_a_run_of_the_workspace_with_its_version_linked(
    simazure: SimAzure,
    azure_settings: Settings,
    read_run: Callable[..., dict[str, Any]],
    cli: Callable[..., Any],
    home: Path,
) -> None:
    done = cli("retrain", env=TRACKED, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (home / "runs").iterdir()
    record = json.loads((run_dir / tracking.RUN_FILE).read_text())
    # azure-ai-ml hands out the workspace's URI for the MLflow API version the installed MLflow speaks.
    workspace_uri = f"azureml://{TRACKING_HOST}/mlflow/v2.0{WS_PATH}"
    assert record["tracking_uri"] == workspace_uri

    run = read_run(record["run_id"], MODEL_CARD)
    assert run["uri"] == workspace_uri
    trained = json.loads((run_dir / "train.json").read_text())
    assert run["info"]["run_name"] == run_dir.name and run["info"]["status"] == "FINISHED"
    assert run["params"] == {"alpha": "1.0", "test_size": "0.2", "seed": "42", "n_train": "353", "n_test": "89"}
    for key, value in trained["metrics"].items():
        assert abs(run["metrics"][f"challenger_{key}"] - value) < 1e-9
    assert run["tags"]["data_fingerprint"] == trained["data_fingerprint"]
    assert run["tags"]["mlflow.source.git.commit"] == TRACKED["GIT_COMMIT"]
    assert (run["tags"]["registered_model"], run["tags"]["registered_version"]) == ("tracked", "1")
    assert set(run["artifacts"]) == {MODEL_CARD, *PLOTS, "evaluation.json", "train.json", "validation.json"}
    assert run["card"] == (run_dir / MODEL_CARD).read_text()
    # The run history keeps artifacts in the workspace's storage, named by the run, as Azure ML does.
    run_uri = f"{workspace_uri}/experiments/diabetes-mlops/runs/{record['run_id']}"
    assert run["info"]["artifact_uri"] == f"{run_uri}/artifacts"
    blobs = {b.name for b in simazure.tracking.artifacts.list_blobs(name_starts_with="ExperimentRun/")}
    assert f"ExperimentRun/dcid.{record['run_id']}/{MODEL_CARD}" in blobs

    registry = open_registry(dataclasses.replace(azure_settings, registry_backend="azureml"))
    assert registry.get("tracked", 1).tags[tracking.RUN_ID_TAG] == record["run_id"]
    assert simazure.gateway.refused == []
