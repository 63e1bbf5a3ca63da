"""Experiment tracking with MLflow (the ``tracking`` extra): one MLflow run per run directory.

Training starts the run (parameters, test metrics, data fingerprint, git commit, the training and
validation files); evaluation adds the champion/challenger metrics, the decision, the model card and
the plots; registration tags the run with the registered version and the registry entry with the run's
id. The run's id and tracking URI are kept in the run directory (``mlflow.json``), so steps run as
separate processes (``train``, ``evaluate``, ``register``, as Jenkins runs them) add to the same run.

Where runs go, as MLflow's own tools decide: ``MLFLOW_TRACKING_URI`` when set; on Azure ML (the
``azureml`` registry) the workspace's MLflow tracking URI (``azureml://``, which MLflow reaches through Azure
ML's plugin, the ``azure-tracking`` extra), so runs show in Azure ML studio; else a SQLite store in the home
(``<home>/mlflow.db``, artifacts beside it in ``mlartifacts/``). Inside an Azure ML job, which sets
``MLFLOW_TRACKING_URI`` and ``MLFLOW_RUN_ID``, training logs into the job's own run.

Without MLflow installed, or with the ``tracking`` setting off, every function here does nothing.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from diabetes_mlops.errors import MlopsError
from diabetes_mlops.runs import MLFLOW_FILE, TRAIN_FILE, VALIDATION_FILE

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from mlflow.tracking import MlflowClient

    from diabetes_mlops.config import Settings
    from diabetes_mlops.evaluate import Evaluation
    from diabetes_mlops.registry import ModelVersion
    from diabetes_mlops.train import TrainResult

RUN_FILE = MLFLOW_FILE
STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
RUN_ID_TAG = "mlflow_run_id"
TRAINING_FILES = (TRAIN_FILE, VALIDATION_FILE)
AZUREML_SCHEME = "azureml://"


@cache
def mlflow_installed() -> bool:
    """Whether MLflow can be imported (the ``tracking`` extra)."""
    # MLflow imports tqdm.auto, which warns in a notebook without ipywidgets; no tqdm bar is drawn here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        try:
            import mlflow  # noqa: F401
        except ImportError:
            return False
    return True


def enabled(settings: Settings) -> bool:
    """Runs are tracked when the ``tracking`` setting is on and MLflow is installed.

    Every tracking call asks this first, before MLflow is imported: so it is here that a run bound for an
    Azure ML workspace names the cloud to Azure ML's plugin, which reads it once, when MLflow imports it."""
    if not settings.tracking:
        return False
    if _to_azure_ml(settings):
        from diabetes_mlops.azure.clouds import export_to_azureml

        export_to_azureml(settings.azure.cloud)  # before MLflow imports its Azure ML plugin
    return mlflow_installed()


def _to_azure_ml(settings: Settings) -> bool:
    """Whether runs go to an Azure ML workspace (``azureml://``), through Azure ML's MLflow plugin."""
    named = os.environ.get("MLFLOW_TRACKING_URI")
    return named.startswith(AZUREML_SCHEME) if named else settings.registry_backend == "azureml"


def tracking_uri(settings: Settings, workspace_client: MLClient | None = None) -> str:
    """``MLFLOW_TRACKING_URI``; else the Azure ML workspace's, with the azureml registry; else SQLite in the home."""
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    if settings.registry_backend == "azureml":
        from diabetes_mlops.azure.clients import ml_client

        client = workspace_client or ml_client(settings)
        return str(client.workspaces.get(client.workspace_name).mlflow_tracking_uri)
    return f"sqlite:///{(settings.home / STORE_FILE).resolve()}"


def experiment_name(settings: Settings) -> str:
    """``MLFLOW_EXPERIMENT_NAME`` (MLflow's variable, which Azure ML jobs set), else ``tracking_experiment``."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or settings.tracking_experiment


def _shown(uri: str) -> str:
    """The URI without user info, which may hold a password, for messages."""
    parts = urlsplit(uri)
    return uri if "@" not in parts.netloc else uri.replace(parts.netloc, parts.netloc.rpartition("@")[2])


def _record(run_dir: Path) -> dict[str, str] | None:
    path = run_dir / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def run_id(run_dir: Path) -> str | None:
    """The id of the run directory's MLflow run, if it has one."""
    record = _record(run_dir)
    return record["run_id"] if record else None


def registry_tags(run_dir: Path) -> dict[str, str]:
    """Tags that link a registry entry to the MLflow run it came from (none when untracked)."""
    found = run_id(run_dir)
    return {RUN_ID_TAG: found} if found else {}


def _azureml_plugin_installed() -> bool:
    from importlib.util import find_spec

    try:
        return find_spec("azureml.mlflow") is not None
    except ModuleNotFoundError:  # no azureml package at all
        return False


def _client(uri: str) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    if uri.startswith(AZUREML_SCHEME) and not _azureml_plugin_installed():
        raise MlopsError(
            f"MLflow needs Azure ML's plugin (azureml-mlflow) for {_shown(uri)}: "
            "pip install 'diabetes-mlops[azure-tracking]', or set DIABETES_MLOPS_TRACKING=false"
        )

    # A new SQLite store announces its schema migration on stderr at INFO; the CLI's stderr is for errors.
    for name in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: MlflowClient, name: str, uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if uri.startswith("sqlite:///"):  # MLflow would put artifacts under the working directory
        location = (Path(uri.removeprefix("sqlite:///")).resolve().parent / ARTIFACTS_DIR).as_uri()
    return str(client.create_experiment(name, artifact_location=location))


def _open_run(settings: Settings, run_dir: Path) -> tuple[MlflowClient, str]:
    """The run directory's MLflow run: the recorded one, the Azure ML job's (``MLFLOW_RUN_ID``), or a new one."""
    record = _record(run_dir)
    if record is not None:
        return _client(record["tracking_uri"]), record["run_id"]
    uri = tracking_uri(settings)
    client = _client(uri)
    if not (found := os.environ.get("MLFLOW_RUN_ID")):
        experiment = _experiment_id(client, experiment_name(settings), uri)
        found = client.create_run(experiment, run_name=run_dir.name).info.run_id
    (run_dir / RUN_FILE).write_text(json.dumps({"tracking_uri": uri, "run_id": found}, indent=2))
    return client, found


def _logged(settings: Settings, run_dir: Path, log: Any) -> str | None:
    """Run ``log(client, run_id)`` on the run directory's run; MLflow's failures become a MlopsError."""
    if not enabled(settings):
        return None
    from mlflow.exceptions import MlflowException

    try:
        client, found = _open_run(settings, run_dir)
        with _current_uri(client.tracking_uri):
            log(client, found)
            client.set_terminated(found)
    except MlflowException as exc:
        uri = _shown((_record(run_dir) or {}).get("tracking_uri") or tracking_uri(settings))
        raise MlopsError(
            f"MLflow tracking at {uri} failed: {exc.message}; set DIABETES_MLOPS_TRACKING=false to run without it"
        ) from None
    return found


@contextmanager
def _current_uri(uri: str) -> Iterator[None]:
    """Azure ML's plugin finds a run's artifact store by MLflow's current tracking URI, not the client's: make
    ``uri`` current meanwhile (MLflow keeps it in ``MLFLOW_TRACKING_URI`` too), then put back what was."""
    if not uri.startswith(AZUREML_SCHEME):
        yield
        return
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None unsets it, as MLflow's own code does


def _log_files(client: MlflowClient, found: str, run_dir: Path, names: tuple[str, ...]) -> None:
    for name in names:
        if (run_dir / name).is_file():
            client.log_artifact(found, str(run_dir / name))


def log_training(settings: Settings, run_dir: Path, result: TrainResult) -> str | None:
    """Start the run: parameters, test metrics, data fingerprint, git commit, training files; its id."""

    def log(client: MlflowClient, found: str) -> None:
        from mlflow.entities import Metric, Param, RunTag

        params = {**result.params, "n_train": result.n_train, "n_test": result.n_test}
        tags = {
            "model_name": result.model_name,
            "data_fingerprint": result.data_fingerprint,
            "run_dir": str(run_dir),
            "library_versions": json.dumps(result.library_versions),
            **({"mlflow.source.git.commit": result.git_commit} if result.git_commit else {}),
        }
        metrics = {**result.metrics, **result.timings}
        client.log_batch(
            found,
            metrics=[Metric(k, float(v), _now_ms(), 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        _log_files(client, found, run_dir, TRAINING_FILES)

    return _logged(settings, run_dir, log)


def log_evaluation(settings: Settings, run_dir: Path, evaluation: Evaluation, files: list[Path]) -> str | None:
    """Add the evaluation: both models' metrics, the decision and its reason, the card and plots as artifacts."""

    def log(client: MlflowClient, found: str) -> None:
        from mlflow.entities import Metric, RunTag

        metrics = {f"challenger_{k}": v for k, v in evaluation.challenger.items()}
        metrics |= {f"champion_{k}": v for k, v in (evaluation.champion or {}).items()}
        metrics["promoted"] = float(evaluation.decision.promote)
        tags = {
            "decision": "promote" if evaluation.decision.promote else "keep champion",
            "decision_reason": evaluation.decision.reason,
            "champion_version": str(evaluation.champion_version),
        }
        client.log_batch(
            found,
            metrics=[Metric(k, float(v), _now_ms(), 0) for k, v in metrics.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        _log_files(client, found, run_dir, tuple(p.name for p in files))

    return _logged(settings, run_dir, log)


def log_registered(settings: Settings, run_dir: Path, entry: ModelVersion) -> str | None:
    """Tag the run with the registry entry it became (a run directory without a run is left as it is)."""
    if run_id(run_dir) is None:
        return None

    def log(client: MlflowClient, found: str) -> None:
        client.set_tag(found, "registered_model", entry.name)
        client.set_tag(found, "registered_version", str(entry.version))

    return _logged(settings, run_dir, log)


def _now_ms() -> int:
    return int(time.time() * 1000)
