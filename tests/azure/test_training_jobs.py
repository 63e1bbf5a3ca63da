"""Training on Azure ML: compute cluster, command job, pipeline job and schedule, through azure-ai-ml."""

from __future__ import annotations

import io
import json
import re
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from fake_azureml import RG, SUB, WS, WS_PATH, FakeAzureML

from diabetes_mlops.azure.artifacts import DatastoreFiles
from diabetes_mlops.azure.compute import ensure_compute
from diabetes_mlops.azure.jobs import JobFailed, unique_job_name, upload_source, wait_for_job
from diabetes_mlops.azure.pipeline import (
    create_schedule,
    delete_schedule,
    retrain_pipeline,
    retrain_schedule,
    submit_pipeline,
)
from diabetes_mlops.azure.training import train_on_azure
from diabetes_mlops.config import load_settings, setting_values

SOURCE = (
    "azureml://datastores/workspaceblobstore/paths/diabetes-mlops/packages/abc/diabetes_mlops-0.1.0-py3-none-any.whl"
)


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(
        home=tmp_path / "home",
        azure_subscription_id=SUB,
        azure_resource_group=RG,
        azure_workspace=WS,
        azure_compute_max_nodes=4,
        azure_compute_size="Standard_F4s_v2",
        alpha=0.5,
    )


def job_writes(workspace: FakeAzureML, container, files: dict[str, bytes]) -> None:
    """Each job submitted from now on writes ``files`` into its ``run_dir`` output, as its command would."""
    put_job = workspace._put_job

    def put(call):
        prefix = call.body["properties"]["outputs"]["run_dir"]["uri"].partition("/paths/")[2]
        for name, data in files.items():
            container.upload_blob(prefix + name, data, overwrite=True)
        return put_job(call)

    workspace.transport.on("PUT", rf"{WS_PATH}/jobs/(?P<n>[^/]+)", put)


def test_missing_compute_cluster_is_created_autoscaling_from_zero(ml_client, workspace, settings) -> None:
    compute = ensure_compute(ml_client, settings)
    assert compute.name == "cpu-cluster"
    (put,) = workspace.transport.find("PUT", rf"{WS_PATH}/computes/cpu-cluster")
    assert put.api_version == "2023-08-01-preview"
    assert put.body["location"] == "westeurope"  # read from the workspace
    assert put.body["identity"]["type"] == "SystemAssigned"
    props = put.body["properties"]
    assert props["computeType"] == "AmlCompute"
    assert props["properties"]["vmSize"] == "Standard_F4s_v2"
    assert props["properties"]["scaleSettings"] == {
        "maxNodeCount": 4,
        "minNodeCount": 0,
        "nodeIdleTimeBeforeScaleDown": "PT5M",
    }
    # A second call finds it and creates nothing.
    ensure_compute(ml_client, settings)
    assert len(workspace.transport.find("PUT", rf"{WS_PATH}/computes/cpu-cluster")) == 1


def test_train_submits_a_command_job_waits_and_downloads_its_outputs(
    ml_client, workspace, settings, container, tmp_path: Path
) -> None:
    files = DatastoreFiles(container)
    run_dir = tmp_path / "runs" / "20260101T000000000000Z-abc123"
    job_writes(workspace, container, {"train.json": b'{"metrics": {"r2": 0.5}}', "model.skops": b"model-bytes"})
    seen: list[str] = []

    result = train_on_azure(settings, ml_client, files, run_dir, poll_seconds=0, on_status=seen.append)

    assert seen == ["Queued", "Running", "Completed"]
    assert result.files == ["model.skops", "train.json"]
    assert json.loads((run_dir / "train.json").read_text()) == {"metrics": {"r2": 0.5}}
    (put,) = workspace.transport.find(
        "PUT", rf"{WS_PATH}/jobs/diabetes-train-20260101t000000000000z-abc123-[0-9a-f]{{6}}"
    )
    assert result.job_name == put.path.rsplit("/", 1)[1]
    assert put.api_version == "2025-01-01-preview"
    job = put.body["properties"]
    assert job["jobType"] == "Command"
    assert job["computeId"].endswith("/computes/cpu-cluster")
    assert job["command"] == (
        'pip install --quiet "${{inputs.package}}[azure-tracking]" && '
        'diabetes-mlops train --run-dir "${{outputs.run_dir}}"'
    )
    assert job["inputs"]["package"]["mode"] == "Download"
    assert job["inputs"]["package"]["jobInputType"] == "uri_file"
    assert job["inputs"]["package"]["uri"].startswith(
        "azureml://datastores/workspaceblobstore/paths/diabetes-mlops/packages/"
    )
    assert job["outputs"]["run_dir"]["uri"] == (
        f"azureml://datastores/workspaceblobstore/paths/diabetes-mlops/runs/{result.job_name}/"
    )
    assert job["environmentVariables"]["DIABETES_MLOPS_ALPHA"] == "0.5"
    assert job["environmentVariables"]["DIABETES_MLOPS_TRACKING"] == "False"  # as the tests run: tracking off
    assert job["experimentName"] == "diabetes-mlops"
    # A registered environment, versioned by its content: the package's requirements as installed here.
    (env_put,) = workspace.transport.find("PUT", rf"{WS_PATH}/environments/diabetes-mlops/versions/[0-9a-f]{{16}}")
    env_body = env_put.body["properties"]
    assert env_body["image"] == settings.azure.environment_image
    conda = yaml.safe_load(env_body["condaFile"])
    assert "python=3.11" in conda["dependencies"]
    pins = conda["dependencies"][-1]["pip"]
    assert f"scikit-learn=={version('scikit-learn')}" in pins and f"azure-ai-ml=={version('azure-ai-ml')}" in pins
    assert not [pin for pin in pins if pin.startswith("diabetes-mlops")]  # the job installs the kit from its wheel
    assert job["environmentId"].endswith(f"environments/diabetes-mlops/versions/{env_put.path.rsplit('/', 1)[1]}")
    # The package went to the datastore as a wheel with the package's own modules and its metadata.
    (wheel,) = container.list_blobs(name_starts_with="diabetes-mlops/packages/")
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(io.BytesIO(container.download_blob(wheel.name).readall())) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert {"diabetes_mlops/cli/base.py", "diabetes_mlops/azure/training.py"} <= names
    assert "Provides-Extra: azure" in metadata
    assert workspace.transport.unmatched == []


def running_job(name: str) -> dict[str, object]:
    """A command job as the service returns it while it runs."""
    return {
        "id": f"{WS_PATH}/jobs/{name}",
        "name": name,
        "properties": {
            "jobType": "Command",
            "command": "true",
            "environmentId": "azureml:env:1",
            "status": "Running",
            "services": {},
        },
    }


def test_a_failed_job_is_an_error_naming_the_job(credential, settings, tmp_path: Path) -> None:
    from azure.ai.ml import MLClient

    failing = FakeAzureML(job_statuses=["Running", "Failed"])
    client = MLClient(credential, SUB, RG, WS, transport=failing.transport, enable_telemetry=False)
    failing.jobs["j1"] = running_job("j1")
    failing._status_iters["j1"] = iter(["Running", "Failed"])
    with pytest.raises(JobFailed, match="j1 ended Failed"):
        wait_for_job(client, "j1", timeout=30, poll_seconds=0)


def test_a_job_that_does_not_finish_in_time_is_cancelled(ml_client, workspace) -> None:
    workspace.jobs["slow"] = running_job("slow")
    workspace._status_iters["slow"] = iter(["Running"] * 10)
    with pytest.raises(JobFailed, match="cancelled"):
        wait_for_job(ml_client, "slow", timeout=0, poll_seconds=0)
    assert workspace.transport.find("POST", rf"{WS_PATH}/jobs/slow/cancel")


def test_retraining_pipeline_and_its_schedule(ml_client, workspace, settings) -> None:
    job = retrain_pipeline(settings, SOURCE)
    submitted = submit_pipeline(ml_client, job)
    (put,) = workspace.transport.find("PUT", rf"{WS_PATH}/jobs/{submitted.name}")
    body = put.body["properties"]
    assert body["jobType"] == "Pipeline"
    assert body["settings"]["default_compute"].endswith("/computes/cpu-cluster")
    assert list(body["jobs"]) == ["trained", "evaluated", "registered"]
    assert body["jobs"]["evaluated"]["inputs"]["run_dir"]["value"] == "${{parent.jobs.trained.outputs.run_dir}}"
    assert body["jobs"]["registered"]["inputs"]["run_dir"]["value"] == "${{parent.jobs.evaluated.outputs.run_dir}}"
    assert body["jobs"]["registered"]["environment_variables"]["DIABETES_MLOPS_REGISTRY_BACKEND"] == "azureml"
    assert "DIABETES_MLOPS_REGISTRY_BACKEND" not in body["jobs"]["trained"]["environment_variables"]
    assert body["inputs"]["package"]["uri"] == SOURCE
    assert body["jobs"]["registered"]["environment_variables"]["DIABETES_MLOPS_AZURE_WORKSPACE"] == WS
    commands = [c["properties"]["componentSpec"]["command"] for c in workspace.components]
    assert all(c.startswith('pip install --quiet "${{inputs.package}}[azure-tracking]" && ') for c in commands)
    assert any("diabetes-mlops train" in c for c in commands)
    assert any("diabetes-mlops evaluate" in c and "|| [ $? -eq 3 ]" in c for c in commands)
    assert any("diabetes-mlops register" in c and "|| [ $? -eq 3 ]" in c for c in commands)

    schedule = create_schedule(ml_client, retrain_schedule(settings, retrain_pipeline(settings, SOURCE)))
    assert schedule.name == "diabetes-retrain"
    (sput,) = workspace.transport.find("PUT", rf"{WS_PATH}/schedules/diabetes-retrain")
    assert sput.api_version == "2023-06-01-preview"
    trigger = sput.body["properties"]["trigger"]
    assert trigger["triggerType"] == "Cron"
    assert trigger["expression"] == "0 3 * * *"
    assert trigger["timeZone"] == "UTC"
    action = sput.body["properties"]["action"]
    assert action["actionType"] == "CreateJob"
    assert action["jobDefinition"]["jobType"] == "Pipeline"
    assert workspace.transport.unmatched == []

    assert delete_schedule(ml_client, "diabetes-retrain") is True
    assert "diabetes-retrain" not in workspace.schedules
    assert delete_schedule(ml_client, "diabetes-retrain") is False


def test_the_uploaded_wheel_is_content_addressed(container, monkeypatch: pytest.MonkeyPatch) -> None:
    from diabetes_mlops.azure import jobs

    files = DatastoreFiles(container)
    first = upload_source(files)
    assert upload_source(files) == first
    name, entries = jobs.wheel_entries()
    changed = {**entries, "diabetes_mlops/__init__.py": entries["diabetes_mlops/__init__.py"] + b"\n# changed\n"}
    monkeypatch.setattr(jobs, "wheel_entries", lambda: (name, changed))
    assert upload_source(files) != first


def test_a_local_training_file_is_uploaded_and_passed_to_the_job(
    ml_client, workspace, settings, container, tmp_path: Path
) -> None:
    data = tmp_path / "batch.csv"
    data.write_text("age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target\n")
    run_dir = tmp_path / "runs" / "r2"
    job_writes(workspace, container, {"train.json": b"{}"})
    result = train_on_azure(settings, ml_client, DatastoreFiles(container), run_dir, data=str(data), poll_seconds=0)

    name = result.job_name
    assert container.download_blob(f"diabetes-mlops/runs/{name}-input/batch.csv").readall() == data.read_bytes()
    (put,) = workspace.transport.find("PUT", rf"{WS_PATH}/jobs/{name}")
    job = put.body["properties"]
    assert job["command"].endswith('--data "${{inputs.data}}"')
    assert job["inputs"]["data"] == {
        "uri": f"azureml://datastores/workspaceblobstore/paths/diabetes-mlops/runs/{name}-input/batch.csv",
        "mode": "Download",
        "jobInputType": "uri_file",
    }


def test_the_pipeline_trains_on_the_configured_data_asset(ml_client, workspace, settings) -> None:
    with_data = load_settings(**{**setting_values(settings), "azure_training_data": "azureml:diabetes-batches:3"})
    submit_pipeline(ml_client, retrain_pipeline(with_data, SOURCE))
    (put,) = [c for c in workspace.transport.find("PUT", rf"{WS_PATH}/jobs/.+")]
    trained = put.body["properties"]["jobs"]["trained"]
    assert trained["inputs"]["data"]["uri"].endswith("diabetes-batches/versions/3")
    assert any('--data "${{inputs.data}}"' in c["properties"]["componentSpec"]["command"] for c in workspace.components)


@pytest.mark.parametrize(
    ("variables", "context"),
    [
        ({}, ""),
        ({"JOB_NAME": "diabetes-mlops/main", "BRANCH_NAME": "main"}, "diabetes-mlops-main-"),
        (
            {"JOB_NAME": "ml/diabetes-mlops/feature%2FRidge_2", "BRANCH_NAME": "feature/Ridge_2"},
            "ml-diabetes-mlops-feature-ridge-2-",
        ),
        ({"JOB_NAME": "nightly"}, "nightly-"),
    ],
)
def test_job_names_carry_the_jenkins_job_branch_and_build_and_never_repeat(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], context: str
) -> None:
    for name in ("JOB_NAME", "BRANCH_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    names = {unique_job_name("train", "build-1") for _ in range(50)}
    assert len(names) == 50  # a re-run of the same build is its own job too
    for name in names:
        assert re.fullmatch(rf"diabetes-train-{re.escape(context)}build-1-[0-9a-f]{{6}}", name), name
        assert len(name) <= 255 and re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name)
