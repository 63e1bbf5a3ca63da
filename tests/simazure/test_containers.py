"""An image built by ACR from the kit's bundle, run by ACI and by an AKS Deployment, answering the smoke test."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from azure.mgmt.containerinstance.models import ImageRegistryCredential

from diabetes_mlops.azure.clients import (
    container_instance_client,
    container_registry_client,
    container_service_client,
)
from diabetes_mlops.config import Settings
from diabetes_mlops.deploy.aci import DeployFailed, deploy_aci
from diabetes_mlops.deploy.aks import current_image, deploy_aks, kube_client
from diabetes_mlops.deploy.bundle import write_bundle
from diabetes_mlops.deploy.image import BUILD_API_VERSION, build_with_acr, login_server
from diabetes_mlops.registry.local import LocalRegistry
from tests.serving.conftest import register_model
from tests.simazure.service import ACR_NAME, SimAzure


@pytest.fixture
def pushed(simazure: SimAzure, azure_settings: Settings, tmp_path: Path) -> tuple[str, int]:
    """The bundle of a registered model, built and pushed by an ACR build run: (image, model version)."""
    version = register_model(azure_settings)
    context = write_bundle(
        LocalRegistry(azure_settings.registry_dir), azure_settings.model_name, version, tmp_path / "b"
    )
    client = container_registry_client(azure_settings, api_version=BUILD_API_VERSION)
    result = build_with_acr(azure_settings, client, context, azure_settings.model_name, version, poll_seconds=0.5)
    assert result.image == f"{ACR_NAME}.azurecr.simazure.test/{azure_settings.model_name}:{version}"
    return result.image, version


def test_an_aci_group_runs_the_image_and_passes_the_smoke_test(
    simazure: SimAzure, azure_settings: Settings, pushed: tuple[str, int]
) -> None:
    image, version = pushed
    password = simazure.registries.passwords[ACR_NAME]
    credential = ImageRegistryCredential(server=login_server(azure_settings), username=ACR_NAME, password=password)
    settings = dataclasses.replace(azure_settings, azure_aci_dns_label="diabetes-qa-sim")
    deployed = deploy_aci(settings, container_instance_client(settings), image, credential, expect_version=version)
    assert deployed.smoke_ok, deployed.smoke_reason
    assert deployed.fqdn == "diabetes-qa-sim.westeurope.azurecontainer.simazure.test"
    group = simazure.container_groups.groups[settings.azure_aci_name]["properties"]
    assert group["provisioningState"] == "Succeeded"
    # The secure value reached the container but is never returned.
    env = (
        container_instance_client(settings)
        .container_groups.get(settings.azure_resource_group, settings.azure_aci_name)
        .containers[0]
        .environment_variables
    )
    assert {e.name: e.secure_value for e in env}["DIABETES_MLOPS_SCORING_KEY"] is None
    assert simazure.gateway.refused == []


def test_aci_refuses_an_image_it_cannot_pull(
    simazure: SimAzure, azure_settings: Settings, pushed: tuple[str, int]
) -> None:
    image, version = pushed
    wrong = ImageRegistryCredential(server=login_server(azure_settings), username=ACR_NAME, password="wrong")
    with pytest.raises(DeployFailed, match="not accessible"):
        deploy_aci(azure_settings, container_instance_client(azure_settings), image, wrong, expect_version=version)


def test_an_aks_deployment_rolls_out_and_passes_the_smoke_test(
    simazure: SimAzure, azure_settings: Settings, pushed: tuple[str, int]
) -> None:
    image, version = pushed
    api = kube_client(azure_settings, container_service_client(azure_settings))
    deployed = deploy_aks(azure_settings, api, image, expect_version=version, poll_seconds=0.5)
    assert deployed.smoke_ok, deployed.smoke_reason
    assert current_image(api, azure_settings.azure_aks_namespace)[0] == image
    assert (
        len(
            simazure.kube.pods[
                f"/apis/apps/v1/namespaces/{azure_settings.azure_aks_namespace}/deployments/diabetes-scoring"
            ]
        )
        == 2
    )
    assert simazure.gateway.refused == []
