"""The training compute cluster: created when missing, autoscaling between 0 and N nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import AmlCompute

    from diabetes_mlops.config import Settings

COMPUTE_TIMEOUT_SECONDS = 900


def compute_cluster(settings: Settings) -> AmlCompute:
    """The cluster the settings describe: no node (no cost) when idle, a system identity for the registry."""
    from azure.ai.ml.entities import AmlCompute, IdentityConfiguration

    return AmlCompute(
        name=settings.azure.compute_name,
        size=settings.azure.compute_size,
        min_instances=0,
        max_instances=settings.azure.compute_max_nodes,
        idle_time_before_scale_down=settings.azure.compute_idle_seconds,
        tier="dedicated",
        identity=IdentityConfiguration(type="system_assigned"),
        description="diabetes-mlops training; scales to 0 nodes when idle",
    )


def ensure_compute(ml_client: MLClient, settings: Settings, timeout: float = COMPUTE_TIMEOUT_SECONDS) -> AmlCompute:
    """The configured cluster, created (and waited for) only when the workspace does not have it yet."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return ml_client.compute.get(settings.azure.compute_name)
    except ResourceNotFoundError:
        return ml_client.compute.begin_create_or_update(compute_cluster(settings)).result(timeout=timeout)
