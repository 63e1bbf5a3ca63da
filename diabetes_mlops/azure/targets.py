"""The Azure ML side of the CLI's training and batch-scoring verbs, with clients built from settings (deployments:
``deploy.targets``).

Each function takes the settings and an optional credential (``DefaultAzureCredential`` when omitted), so
the CLI stays a thin layer and Jenkins' service principal reaches every call through the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from diabetes_mlops.azure.clients import default_credential
from diabetes_mlops.errors import MlopsError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from diabetes_mlops.azure.batch import AzureBatch
    from diabetes_mlops.azure.training import AzureTraining
    from diabetes_mlops.config import Settings


def _workspace(settings: Settings, credential: TokenCredential | None) -> tuple[Any, Any]:
    from diabetes_mlops.azure.artifacts import DatastoreFiles
    from diabetes_mlops.azure.clients import ml_client

    credential = credential or default_credential(settings)
    client = ml_client(settings, credential)
    return client, DatastoreFiles.from_workspace(client, credential)


def train(
    settings: Settings,
    run_dir: Path,
    data: str | None = None,
    credential: TokenCredential | None = None,
) -> AzureTraining:
    """``train --target azure``: the command job on the cluster (its wait shown as progress); its outputs land in
    ``run_dir``."""
    from diabetes_mlops.azure.training import train_on_azure

    client, files = _workspace(settings, credential)
    return train_on_azure(settings, client, files, run_dir, data)


def score_batch(
    settings: Settings,
    data: str,
    output: Path,
    model_dir: Path,
    chunk_rows: int,
    workers: int | None = None,
    credential: TokenCredential | None = None,
) -> AzureBatch:
    """``score-batch --target azure``: the command job on the cluster (its wait shown as progress); the predictions
    and rejects land at ``output`` as a local run puts them."""
    from diabetes_mlops.azure.batch import score_batch_on_azure

    client, files = _workspace(settings, credential)
    return score_batch_on_azure(settings, client, files, data, output, model_dir, chunk_rows, workers)


def ensure_compute(settings: Settings, credential: TokenCredential | None = None) -> Any:
    from diabetes_mlops.azure.clients import ml_client
    from diabetes_mlops.azure.compute import ensure_compute as ensure

    return ensure(ml_client(settings, credential or default_credential(settings)), settings)


def run_retrain_pipeline(
    settings: Settings, wait: bool = True, credential: TokenCredential | None = None
) -> dict[str, object]:
    """Submit train -> evaluate -> register as a pipeline job now; wait for it unless told not to."""
    from diabetes_mlops.azure.access import require_access
    from diabetes_mlops.azure.compute import ensure_compute as ensure
    from diabetes_mlops.azure.jobs import upload_source, wait_for_job
    from diabetes_mlops.azure.pipeline import retrain_pipeline, submit_pipeline

    require_access(settings, "schedule", credential)
    client, files = _workspace(settings, credential)
    ensure(client, settings)
    job = submit_pipeline(client, retrain_pipeline(settings, upload_source(files)))
    if job.name is None:
        raise MlopsError("Azure ML accepted the retraining pipeline without naming its job")
    status = str(job.status)
    if wait:
        status = wait_for_job(client, job.name, settings.azure.job_timeout, studio_url=job.studio_url)
    return {"job_name": job.name, "status": status, "studio_url": job.studio_url}


def schedule_retraining(settings: Settings, credential: TokenCredential | None = None) -> dict[str, object]:
    """Create or replace the cron schedule of the retraining pipeline (the package source as it is now)."""
    from diabetes_mlops.azure.access import require_access
    from diabetes_mlops.azure.compute import ensure_compute as ensure
    from diabetes_mlops.azure.jobs import upload_source
    from diabetes_mlops.azure.pipeline import create_schedule, retrain_pipeline, retrain_schedule

    require_access(settings, "schedule", credential)
    client, files = _workspace(settings, credential)
    ensure(client, settings)
    schedule = create_schedule(client, retrain_schedule(settings, retrain_pipeline(settings, upload_source(files))))
    return {"name": schedule.name, "cron": settings.azure.schedule_cron, "time_zone": settings.azure.schedule_timezone}


def unschedule_retraining(settings: Settings, credential: TokenCredential | None = None) -> bool:
    from diabetes_mlops.azure.clients import ml_client
    from diabetes_mlops.azure.pipeline import delete_schedule

    return delete_schedule(
        ml_client(settings, credential or default_credential(settings)), settings.azure.schedule_name
    )
