"""The Azure side of each CLI verb, with its clients built from settings: what ``--target azure`` calls.

Each function takes the settings and an optional credential (``DefaultAzureCredential`` when omitted), so
the CLI stays a thin layer and Jenkins' service principal reaches every call through the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diabetes_mlops.azure.clients import default_credential, require

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from diabetes_mlops.azure.training import AzureTraining
    from diabetes_mlops.config import Settings
    from diabetes_mlops.deploy.image import ImageResult
    from diabetes_mlops.registry import ModelVersion, Registry, VersionRef

Echo = Callable[[str], None]
ENVIRONMENTS = ("qa", "production")


def _workspace(settings: Settings, credential: TokenCredential | None) -> tuple[Any, Any]:
    from diabetes_mlops.azure.artifacts import DatastoreFiles
    from diabetes_mlops.azure.clients import ml_client

    credential = credential or default_credential()
    client = ml_client(settings, credential)
    return client, DatastoreFiles.from_workspace(client, credential)


def train(
    settings: Settings,
    run_dir: Path,
    data: str | None = None,
    echo: Echo | None = None,
    credential: TokenCredential | None = None,
) -> AzureTraining:
    """``train --target azure``: the command job on the cluster; its outputs land in ``run_dir``."""
    from diabetes_mlops.azure.training import train_on_azure

    client, files = _workspace(settings, credential)
    status = (lambda s: echo(f"job status: {s}")) if echo else None
    return train_on_azure(settings, client, files, run_dir, data, on_status=status)


def ensure_compute(settings: Settings, credential: TokenCredential | None = None) -> Any:
    from diabetes_mlops.azure.clients import ml_client
    from diabetes_mlops.azure.compute import ensure_compute as ensure

    return ensure(ml_client(settings, credential or default_credential()), settings)


def run_retrain_pipeline(
    settings: Settings, wait: bool = True, echo: Echo | None = None, credential: TokenCredential | None = None
) -> dict[str, object]:
    """Submit train -> evaluate -> register as a pipeline job now; wait for it unless told not to."""
    from diabetes_mlops.azure.compute import ensure_compute as ensure
    from diabetes_mlops.azure.jobs import upload_source, wait_for_job
    from diabetes_mlops.azure.pipeline import retrain_pipeline, submit_pipeline

    client, files = _workspace(settings, credential)
    ensure(client, settings)
    job = submit_pipeline(client, retrain_pipeline(settings, upload_source(files)))
    status = str(job.status)
    if wait:
        notify = (lambda s: echo(f"pipeline status: {s}")) if echo else None
        status = wait_for_job(client, job.name, settings.azure_job_timeout, on_status=notify)
    return {"job_name": job.name, "status": status, "studio_url": job.studio_url}


def schedule_retraining(settings: Settings, credential: TokenCredential | None = None) -> dict[str, object]:
    """Create or replace the cron schedule of the retraining pipeline (the package source as it is now)."""
    from diabetes_mlops.azure.compute import ensure_compute as ensure
    from diabetes_mlops.azure.jobs import upload_source
    from diabetes_mlops.azure.pipeline import create_schedule, retrain_pipeline, retrain_schedule

    client, files = _workspace(settings, credential)
    ensure(client, settings)
    schedule = create_schedule(client, retrain_schedule(settings, retrain_pipeline(settings, upload_source(files))))
    return {"name": schedule.name, "cron": settings.azure_schedule_cron, "time_zone": settings.azure_schedule_timezone}


def unschedule_retraining(settings: Settings, credential: TokenCredential | None = None) -> bool:
    from diabetes_mlops.azure.clients import ml_client
    from diabetes_mlops.azure.pipeline import delete_schedule

    return delete_schedule(ml_client(settings, credential or default_credential()), settings.azure_schedule_name)


def image_for(settings: Settings, name: str, version: int) -> str:
    """The ACR image of a model version: ``<acr>.azurecr.io/<name>:<version>``."""
    from diabetes_mlops.deploy.image import image_tag, login_server

    return f"{login_server(settings)}/{image_tag(name, version)}"


def publish(
    settings: Settings,
    registry: Registry,
    name: str,
    ref: VersionRef,
    out_dir: Path,
    credential: TokenCredential | None = None,
) -> ImageResult:
    """Write the scoring bundle of ``name:ref`` and build and push its image to ACR."""
    from diabetes_mlops.deploy.bundle import write_bundle
    from diabetes_mlops.deploy.image import publish_image

    version = registry.get(name, ref).version
    context = write_bundle(registry, name, version, out_dir)
    return publish_image(settings, context, name, version, credential)


def deploy(
    settings: Settings,
    env: str,
    image: str,
    expect_version: int | None = None,
    credential: TokenCredential | None = None,
) -> dict[str, object]:
    """QA on Azure Container Instances, production on AKS; each ends with the smoke test."""
    from diabetes_mlops.azure.clients import (
        container_instance_client,
        container_registry_client,
        container_service_client,
    )

    credential = credential or default_credential()
    if env == "qa":
        from diabetes_mlops.deploy.aci import deploy_aci, registry_credential

        registry = None if settings.azure_aci_identity else container_registry_client(settings, credential)
        pull = registry_credential(settings, registry)
        client = container_instance_client(settings, credential)
        return deploy_aci(settings, client, image, pull, expect_version=expect_version).to_dict()
    if env == "production":
        from diabetes_mlops.deploy.aks import deploy_aks, kube_client

        api = kube_client(settings, container_service_client(settings, credential))
        return deploy_aks(settings, api, image, expect_version=expect_version).to_dict()
    raise ValueError(f"environment must be one of {ENVIRONMENTS}, not {env!r}")


def deploy_azure(settings: Settings, env: str, entry: ModelVersion) -> dict[str, object]:
    """``deploy --target azure``: the image of ``entry`` (published before) to ``env``, smoke-tested."""
    return deploy(settings, env, image_for(settings, entry.name, entry.version), expect_version=entry.version)


def undeploy_qa(settings: Settings, credential: TokenCredential | None = None) -> bool:
    from diabetes_mlops.azure.clients import container_instance_client
    from diabetes_mlops.deploy.aci import delete_aci

    return delete_aci(settings, container_instance_client(settings, credential or default_credential()))


def rollback_production(settings: Settings, credential: TokenCredential | None = None) -> dict[str, object]:
    """Apply again the image production ran before its current one."""
    from diabetes_mlops.azure.clients import container_service_client
    from diabetes_mlops.deploy.aks import kube_client, rollback_aks

    require(settings, "azure_aks_cluster")
    api = kube_client(settings, container_service_client(settings, credential or default_credential()))
    return rollback_aks(settings, api).to_dict()
