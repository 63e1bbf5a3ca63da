"""``diabetes-mlops train --target azure``: the same ``train`` verb as a command job on the compute cluster."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.azure.jobs import INSTALL, kit_command, unique_job_name, upload_source, wait_for_job

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Command

    from diabetes_mlops.azure.artifacts import DatastoreFiles
    from diabetes_mlops.config import Settings

RUNS_PREFIX = "diabetes-mlops/runs"


@dataclass(frozen=True)
class AzureTraining:
    """A finished training job: its name, its studio page and the local files it produced."""

    job_name: str
    studio_url: str | None
    run_dir: Path
    files: list[str]

    def to_dict(self) -> dict[str, object]:
        return {
            "job_name": self.job_name,
            "studio_url": self.studio_url,
            "run_dir": str(self.run_dir),
            "files": self.files,
        }


def training_job(
    settings: Settings, name: str, run_id: str, package_uri: str, run_uri: str, data: str | None = None
) -> Command:
    """The command job ``name`` that installs the package's wheel and runs ``diabetes-mlops train`` into the run
    output."""
    from azure.ai.ml import Input, Output

    inputs = {"package": Input(type="uri_file", path=package_uri, mode="download")}
    line = f'{INSTALL} && diabetes-mlops train --run-dir "${{{{outputs.run_dir}}}}"'
    if data:
        inputs["data"] = Input(type="uri_file", path=data, mode="download")
        line += ' --data "${{inputs.data}}"'
    outputs = {"run_dir": Output(type="uri_folder", path=run_uri, mode="rw_mount")}
    return kit_command(
        settings,
        name,
        f"diabetes-mlops train {run_id}",
        line,
        inputs,
        outputs,
        {"run_id": run_id},
    )


def train_on_azure(
    settings: Settings,
    ml_client: MLClient,
    files: DatastoreFiles,
    run_dir: Path,
    data: str | None = None,
    poll_seconds: float = 15.0,
    on_status: Callable[[str], None] | None = None,
) -> AzureTraining:
    """Ensure the cluster, submit the job, wait for it, and download its outputs into ``run_dir``.

    ``data`` is an Azure ML data reference (``azureml:<asset>@latest`` or a datastore URI); a local file is
    uploaded first. Without it the job trains on ``azure_training_data`` or the built-in data set.
    """
    from diabetes_mlops.azure.compute import ensure_compute

    ensure_compute(ml_client, settings)
    run_id = run_dir.name
    name = unique_job_name("train", run_id)
    run_prefix = f"{RUNS_PREFIX}/{name}"  # the job's own: no earlier build's files can be mistaken for its outputs
    data = data or settings.azure.training_data
    if data and Path(data).is_file():
        local = Path(data)
        files.container.upload_blob(f"{run_prefix}-input/{local.name}", local.read_bytes(), overwrite=True)
        data = files.uri(f"{run_prefix}-input") + local.name
    job = training_job(settings, name, run_id, upload_source(files), files.uri(run_prefix), data)
    submitted = ml_client.jobs.create_or_update(job)
    wait_for_job(ml_client, submitted.name, settings.azure.job_timeout, poll_seconds, on_status, submitted.studio_url)
    run_dir.mkdir(parents=True, exist_ok=True)
    downloaded = files.download_dir(run_prefix, run_dir)
    return AzureTraining(
        submitted.name, submitted.studio_url, run_dir, sorted(p.relative_to(run_dir).as_posix() for p in downloaded)
    )
