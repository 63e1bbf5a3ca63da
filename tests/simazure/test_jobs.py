"""Azure ML jobs on the simulated Azure run their command lines in venvs built as their environment says."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
from wheel.wheelfile import WheelFile  # type: ignore[import-untyped]

from diabetes_mlops import tracking
from diabetes_mlops.azure.artifacts import DatastoreFiles
from diabetes_mlops.azure.clients import CONFIG_FILE_FIELDS, default_credential, ml_client
from diabetes_mlops.azure.jobs import JobFailed, wait_for_job, wheel_entries
from diabetes_mlops.azure.jobs import environment as kit_environment
from diabetes_mlops.azure.training import train_on_azure
from diabetes_mlops.config import Settings, load_settings
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.registry.local import LocalRegistry
from tests.conftest import CliResult
from tests.serving.conftest import register_model
from tests.simazure.runner import venv_env
from tests.simazure.service import SimAzure


def test_a_tracked_training_job_runs_the_kit_from_its_wheel_through_a_not_responding_spell(
    simazure: SimAzure, azure_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = dataclasses.replace(azure_settings, tracking=True)
    client = ml_client(settings, enable_telemetry=False)
    files = DatastoreFiles.from_workspace(client, default_credential(settings))
    run_dir = tmp_path / "runs" / "20260101T000000000000Z-simjob"
    monkeypatch.setattr(simazure.workspace, "not_responding_polls", 2)
    seen: list[str] = []
    result = train_on_azure(settings, client, files, run_dir, poll_seconds=0.2, on_status=seen.append)
    assert seen[-1] == "Completed", simazure.workspace.errors
    assert "NotResponding" in seen  # a transient state: the wait went on
    train = json.loads((run_dir / "train.json").read_text())
    assert train["metrics"]["r2"] > 0.3
    assert "model.skops" in result.files
    # The job logged into the MLflow run Azure ML gave it, which the run directory records for the next steps.
    record = json.loads((run_dir / tracking.RUN_FILE).read_text())
    assert record["run_id"] == simazure.workspace.run_ids[result.job_name]
    status, found = simazure.tracking.call("GET", f"/api/2.0/mlflow/runs/get?run_id={record['run_id']}")
    assert status == 200 and found["run"]["info"]["status"] == "FINISHED"
    assert {"key": "alpha", "value": "1.0"} in found["run"]["data"]["params"]
    assert any(m["key"] == "r2" and m["value"] == train["metrics"]["r2"] for m in found["run"]["data"]["metrics"])
    assert simazure.gateway.refused == []


SUBMIT_FROM_WHEEL = """
from diabetes_mlops import tracking
from diabetes_mlops.azure.artifacts import DatastoreFiles
from diabetes_mlops.azure.clients import default_credential, ml_client
from diabetes_mlops.azure.jobs import upload_source
from diabetes_mlops.config import load_settings

settings = load_settings()
client = ml_client(settings, enable_telemetry=False)
print(upload_source(DatastoreFiles.from_workspace(client, default_credential(settings))))
"""


def test_a_user_who_installed_the_wheel_can_ship_the_package_to_a_job(
    simazure: SimAzure, simazure_env: dict[str, str], tmp_path: Path
) -> None:
    """From a venv where the kit came from a wheel (the job's own), far from any checkout."""
    name, entries = wheel_entries()
    wheel = tmp_path / name
    with WheelFile(wheel, "w") as archive:
        for arcname, data in entries.items():
            archive.writestr(arcname, data)
    venv = simazure.venvs.get(
        simazure.venvs.key(b"user-wheel", *entries.values()), [f"{wheel}[azure]"], simazure.host_env()
    )
    env = venv_env(venv, {**simazure_env, "HOME": str(tmp_path)})
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", SUBMIT_FROM_WHEEL],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    uri = done.stdout.strip().splitlines()[-1]
    blob = uri.partition("/paths/")[2]
    with zipfile.ZipFile(io.BytesIO(simazure.workspace.container.download_blob(blob).readall())) as wheel:
        assert "diabetes_mlops/azure/jobs.py" in wheel.namelist()


def test_the_retraining_pipeline_and_its_schedule_run_to_completion_from_the_cli(
    simazure: SimAzure, simazure_env: dict[str, str], cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`azure pipeline` trains, evaluates and registers on Azure ML; `azure schedule` then makes the same run
    nightly: fired, it completes and keeps the champion (same data, same model); `--delete` removes it.
    The workspace is named only by Azure ML's config.json, as a user downloads it from the studio: the remote
    steps (evaluate and register, with the azure extra installed) reach it as the compute's identity."""
    config = tmp_path / "config.json"
    scope = {}
    for key, name in zip(CONFIG_FILE_FIELDS, ("SUBSCRIPTION_ID", "RESOURCE_GROUP", "WORKSPACE"), strict=True):
        scope[key] = simazure_env[f"DIABETES_MLOPS_AZURE_{name}"]
        monkeypatch.delenv(f"DIABETES_MLOPS_AZURE_{name}")
    config.write_text(json.dumps(scope))
    monkeypatch.setenv("DIABETES_MLOPS_AZURE_CONFIG_FILE", str(config))
    env = {
        "DIABETES_MLOPS_REGISTRY_BACKEND": "azureml",
        "DIABETES_MLOPS_MODEL_NAME": "cli-pipeline",
        "DIABETES_MLOPS_AZURE_SCHEDULE_NAME": "cli-retrain",
    }
    ran = cli("--json", "azure", "pipeline", env=env, timeout=900)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert json.loads(ran.stdout)["status"] == "Completed"
    listed = json.loads(cli("--json", "models", "list", env=env).stdout)
    assert listed["aliases"] == {"champion": 1}

    scheduled = cli("--json", "azure", "schedule", env=env)
    assert scheduled.returncode == 0, scheduled.stderr[-2000:]
    job = simazure.workspace.trigger_schedule("cli-retrain")
    client = ml_client(load_settings(), enable_telemetry=False)
    assert wait_for_job(client, job, timeout=900, poll_seconds=0.5) == "Completed", simazure.workspace.errors
    assert "champion kept" in simazure.workspace.job_log(job)
    relisted = cli("--json", "models", "list", env=env)
    assert relisted.returncode == 0, relisted.stderr[-2000:]
    assert json.loads(relisted.stdout)["aliases"] == {"champion": 1}

    deleted = cli("azure", "schedule", "--delete", env=env)
    assert deleted.returncode == 0, deleted.stderr[-2000:]
    assert "cli-retrain" not in simazure.workspace.schedules


def test_score_batch_runs_as_an_azure_ml_job_and_its_predictions_come_back(
    simazure: SimAzure,
    simazure_env: dict[str, str],
    settings: Settings,
    cli: Callable[..., CliResult],
    tmp_path: Path,
) -> None:
    """A local file and a locally registered version go up as job inputs; the job scores in the kit's venv
    (the one the other jobs use); predictions and rejects come back where a local run puts them."""
    register_model(settings)
    frame = load_builtin().loc[:299, list(FEATURES)].astype(object)
    frame.loc[7, "bmi"] = "abc"
    frame.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "scored" / "out.csv"
    done = cli("--json", "score-batch", str(tmp_path / "in.csv"), str(out), "--model", "1", "--target", "azure",
               "--chunk-rows", "100", timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:] + str(simazure.workspace.errors)
    result = json.loads(done.stdout)
    assert (result["n_rows"], result["n_scored"], result["n_rejected"], result["n_chunks"]) == (300, 299, 1, 3)
    assert result["output"] == str(out) and result["job_name"].startswith("diabetes-score-batch-")
    scored = pd.read_csv(out)
    valid = [i for i in range(300) if i != 7]
    assert scored["row_id"].tolist() == valid and set(scored["model_version"]) == {1}
    model = LocalRegistry(settings.registry_dir).load(settings.model_name, 1)
    assert np.allclose(scored["prediction"], model.predict(frame.loc[valid].astype("float64")))
    rejects = pd.read_csv(result["rejects_file"])
    assert rejects["row"].tolist() == [7] and "bmi" in rejects["reason"][0]
    assert simazure.gateway.refused == []


def test_a_second_branchs_build_1_trains_as_its_own_job(
    simazure: SimAzure, simazure_env: dict[str, str], cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    """Build 1 of two branches of a multibranch job, as their Train stages run it (`train --target azure` into
    the workspace's `.mlops/runs/build-1`): two jobs, each named for its branch and build, each its own outputs;
    the build log names the job's studio page."""
    trained = {}
    for branch in ("main", "feature/alpha"):
        run_dir = tmp_path / branch.replace("/", "-") / ".mlops" / "runs" / "build-1"
        jenkins = {"JOB_NAME": f"diabetes-mlops/{quote(branch, safe='')}", "BRANCH_NAME": branch, "BUILD_NUMBER": "1"}
        done = cli("--json", "train", "--target", "azure", "--run-dir", str(run_dir), env=jenkins, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:] + str(simazure.workspace.errors)
        trained[branch] = json.loads(done.stdout)
        assert json.loads((run_dir / "train.json").read_text())["metrics"]["r2"] > 0.3
    main, feature = trained["main"]["job_name"], trained["feature/alpha"]["job_name"]
    assert main.startswith("diabetes-train-diabetes-mlops-main-build-1-")
    assert feature.startswith("diabetes-train-diabetes-mlops-feature-alpha-build-1-")
    assert simazure.workspace.status[main] == simazure.workspace.status[feature] == "Completed"
    outputs = {simazure.workspace.jobs[n]["properties"]["outputs"]["run_dir"]["uri"] for n in (main, feature)}
    assert len(outputs) == 2
    assert trained["main"]["studio_url"].startswith(f"https://ml.azure.simazure.test/runs/{main}?wsid=/subscriptions/")


def test_a_job_name_in_use_is_refused_unless_only_what_azure_ml_lets_change_changes(
    simazure: SimAzure, azure_settings: Settings
) -> None:
    """Azure ML keeps a job's name for ever: a PUT of the name with other settings is a 400 UserError; with the
    same settings it updates the display name and tags, and the job does not run again."""
    from azure.ai.ml import command
    from azure.core.exceptions import HttpResponseError

    client = ml_client(azure_settings, enable_telemetry=False)
    environment = kit_environment(azure_settings)
    job = command(name=f"names-{uuid.uuid4().hex[:8]}", command="echo one", environment=environment,
                  compute=azure_settings.azure.compute_name)  # fmt: skip
    client.jobs.create_or_update(job)
    job.display_name, job.tags = "renamed", {"kept": "yes"}
    again = client.jobs.create_or_update(job)
    assert again.display_name == "renamed" and again.tags == {"kept": "yes"}
    assert simazure.workspace.jobs[job.name]["properties"]["command"] == "echo one"
    job.command = "echo two"
    with pytest.raises(HttpResponseError) as refused:
        client.jobs.create_or_update(job)
    assert refused.value.status_code == 400 and refused.value.error.code == "UserError"
    assert "A job with this name already exists" in refused.value.message
    assert wait_for_job(client, job.name, timeout=600, poll_seconds=0.5) == "Completed"
    assert simazure.workspace.job_log(job.name).split() == ["one"]  # it ran once, as first submitted


def test_a_job_out_of_time_is_cancelled_and_ends_canceled(
    simazure: SimAzure, azure_settings: Settings, tmp_path: Path
) -> None:
    """The kit cancels a job that outlives azure_job_timeout; Azure ML answers 202 with a Location to poll, stops
    the command and the job ends Canceled, not Failed."""
    settings = dataclasses.replace(azure_settings, azure=dataclasses.replace(azure_settings.azure, job_timeout=1.0))
    client = ml_client(settings, enable_telemetry=False)
    files = DatastoreFiles.from_workspace(client, default_credential(settings))
    with pytest.raises(JobFailed, match=r"still \w+ after 1 s: cancelled"):
        train_on_azure(settings, client, files, tmp_path / "run", poll_seconds=0.2)
    (cancel,) = simazure.transport.find("POST", r".*/jobs/(?P<n>[^/]+)/cancel")
    name = cancel.path.split("/")[-2]
    deadline = time.monotonic() + 60
    while simazure.workspace.status[name] != "Canceled" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert simazure.workspace.status[name] == "Canceled" and name not in simazure.workspace.processes
    poller = client.jobs.begin_cancel(name)  # the Location poll: done once the job has stopped
    poller.result(timeout=30)
    assert poller.done()
