"""Every training and evaluation is an MLflow run, read back here with MLflow's own client."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from diabetes_mlops import tracking
from diabetes_mlops.config import load_settings
from diabetes_mlops.registry import open_registry
from diabetes_mlops.runs import MODEL_CARD, PLOTS
from tests.unimportable import env_without

Cli = Callable[..., object]
TRACKED = {"DIABETES_MLOPS_TRACKING": "true", "GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567"}


@pytest.fixture(autouse=True)
def no_outside_mlflow_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)


def only_run(client: MlflowClient, experiment: str = "diabetes-mlops") -> list:
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    return client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"])


def test_a_retrain_is_one_mlflow_run_with_its_params_metrics_artifacts_and_version(cli: Cli, home: Path) -> None:
    done = cli("retrain", env=TRACKED, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # MLflow's store creation does not talk on stderr
    (run_dir,) = (home / "runs").iterdir()
    trained = json.loads((run_dir / "train.json").read_text())
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    (run,) = only_run(client)

    assert run.info.run_name == run_dir.name and run.info.status == "FINISHED"
    assert json.loads((run_dir / tracking.RUN_FILE).read_text())["run_id"] == run.info.run_id
    assert run.data.params == {"alpha": "1.0", "test_size": "0.2", "seed": "42", "n_train": "353", "n_test": "89"}
    for key, value in trained["metrics"].items():
        assert run.data.metrics[key] == pytest.approx(value)
        assert run.data.metrics[f"challenger_{key}"] == pytest.approx(value)
    assert run.data.metrics["promoted"] == 1.0 and "champion_mse" not in run.data.metrics
    tags = run.data.tags
    assert tags["data_fingerprint"] == trained["data_fingerprint"]
    assert tags["mlflow.source.git.commit"] == TRACKED["GIT_COMMIT"]
    assert tags["decision"] == "promote" and tags["decision_reason"].startswith("no champion yet")
    assert (tags["registered_model"], tags["registered_version"]) == ("diabetes", "1")

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {MODEL_CARD, *PLOTS, "evaluation.json", "train.json", "validation.json"}
    copy = Path(client.download_artifacts(run.info.run_id, MODEL_CARD, str(home / "download")))
    assert copy.read_text() == (run_dir / MODEL_CARD).read_text()
    assert run.info.artifact_uri.startswith((home / "mlartifacts").resolve().as_uri())

    entry = open_registry(load_settings(home=home)).get("diabetes", 1)
    assert entry.tags[tracking.RUN_ID_TAG] == run.info.run_id

    kept = cli("retrain", env=TRACKED, timeout=300)
    assert kept.returncode == 3, kept.stderr
    first, second = only_run(client)
    assert first.info.run_id == run.info.run_id
    assert second.data.tags["decision"] == "keep champion" and "registered_version" not in second.data.tags
    assert second.data.metrics["champion_mse"] == pytest.approx(trained["metrics"]["mse"])
    assert second.data.metrics["promoted"] == 0.0


def test_steps_run_apart_add_to_one_run_in_the_store_mlflow_tracking_uri_names(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    store = tmp_path / "elsewhere" / "runs.db"
    store.parent.mkdir()
    env = {**TRACKED, "MLFLOW_TRACKING_URI": f"sqlite:///{store}", "MLFLOW_EXPERIMENT_NAME": "nightly"}
    run_dir = tmp_path / "build-7"
    for verb in ("train", "evaluate", "register"):
        done = cli(verb, "--run-dir", str(run_dir), env=env, timeout=300)
        assert done.returncode == 0, (verb, done.stderr)
    assert not (home / tracking.STORE_FILE).exists()
    (run,) = only_run(MlflowClient(f"sqlite:///{store}"), "nightly")
    assert run.info.run_name == "build-7"
    assert {"r2", "challenger_r2", "promoted"} <= set(run.data.metrics)
    assert run.data.tags["registered_version"] == "1"
    assert run.info.artifact_uri.startswith((store.parent / "mlartifacts").as_uri())


def test_without_mlflow_installed_a_retrain_is_what_it_was(cli: Cli, home: Path, tmp_path: Path) -> None:
    env = {**TRACKED, **env_without(tmp_path, "mlflow")}
    probe = cli("--version", env=env)  # the blocker is in place: the same interpreter cannot import mlflow
    assert probe.returncode == 0
    done = cli("--json", "retrain", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["registered_version"] == 1
    (run_dir,) = (home / "runs").iterdir()
    assert not (run_dir / tracking.RUN_FILE).exists() and not (home / tracking.STORE_FILE).exists()
    entry = open_registry(load_settings(home=home)).get("diabetes", 1)
    assert tracking.RUN_ID_TAG not in entry.tags


def test_tracking_to_azure_ml_without_its_mlflow_plugin_names_the_extra(cli: Cli, tmp_path: Path) -> None:
    uri = "azureml://westeurope.api.azureml.ms/mlflow/v2.0/subscriptions/s/resourceGroups/g/providers/x/workspaces/w"
    env = {**TRACKED, **env_without(tmp_path, "azureml"), "MLFLOW_TRACKING_URI": uri}
    done = cli("train", env=env, timeout=300)
    assert done.returncode == 1
    last = done.stderr.splitlines()[-1]
    assert last.startswith("error: MLflow needs Azure ML's plugin (azureml-mlflow) for azureml://")
    assert "pip install 'diabetes-mlops[azure-tracking]'" in last and "Traceback" not in done.stderr


def test_the_blocker_really_hides_mlflow(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, **env_without(tmp_path, "mlflow")}
    check = "from diabetes_mlops.tracking import mlflow_installed; import mlflow"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "ModuleNotFoundError: No module named 'mlflow'" in done.stderr


def test_an_unreachable_tracking_server_is_one_error_line_naming_it(cli: Cli) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens on it once closed
    uri = f"http://127.0.0.1:{port}"
    env = {**TRACKED, "MLFLOW_TRACKING_URI": uri, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    done = cli("retrain", env=env, timeout=300)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: MLflow tracking at {uri} failed") and "Traceback" not in done.stderr
    assert "DIABETES_MLOPS_TRACKING=false" in done.stderr


def test_the_tracking_uri_follows_mlflow_then_the_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    assert tracking.tracking_uri(settings) == f"sqlite:///{(tmp_path / 'home' / 'mlflow.db').resolve()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri(settings) == "http://127.0.0.1:5000"
    assert tracking.tracking_uri(load_settings(home=tmp_path, registry_backend="azureml")) == "http://127.0.0.1:5000"
    assert tracking.enabled(load_settings(tracking=True)) and not tracking.enabled(load_settings(tracking=False))
