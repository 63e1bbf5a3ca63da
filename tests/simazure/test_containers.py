"""The Azure target on the simulated Azure: the bundle built by an ACR run and resolved to a digest, run by
ACI and by an AKS Deployment, each answering the kit's smoke test."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from azure.mgmt.containerinstance.models import ImageRegistryCredential

from diabetes_mlops.azure.clients import container_instance_client
from diabetes_mlops.config import Settings
from diabetes_mlops.deploy.aci import deploy_aci
from diabetes_mlops.deploy.image import login_server
from diabetes_mlops.deploy.smoke import smoke_test
from diabetes_mlops.deploy.targets.azure import AzureTarget
from diabetes_mlops.deploy.targets.base import Published
from diabetes_mlops.errors import DeployError
from diabetes_mlops.registry.local import LocalRegistry
from tests.serving.conftest import register_model
from tests.simazure.service import ACR_NAME, SimAzure


@pytest.fixture
def published(simazure: SimAzure, azure_settings: Settings, tmp_path: Path) -> Published:
    """A registered model's bundle, built and pushed by an ACR build run, by digest."""
    version = register_model(azure_settings)
    registry = LocalRegistry(azure_settings.registry_dir)
    done = AzureTarget(azure_settings).publish(registry, azure_settings.model_name, version, tmp_path / "bundle")
    server = f"{ACR_NAME}.azurecr.simazure.test"
    tag = f"{server}/{azure_settings.model_name}:{version}"
    assert done.image == f"{server}/{azure_settings.model_name}@{simazure.registries.images.tags[tag]}"
    return done


def pull_credential(simazure: SimAzure, settings: Settings, password: str | None = None) -> ImageRegistryCredential:
    """The registry's admin credential, for the cloud's login server."""
    secret = password or simazure.registries.passwords[ACR_NAME]
    return ImageRegistryCredential(server=login_server(settings), username=ACR_NAME, password=secret)


def test_an_aci_group_runs_the_image_and_passes_the_smoke_test(
    simazure: SimAzure, azure_settings: Settings, published: Published
) -> None:
    settings = dataclasses.replace(
        azure_settings, azure=dataclasses.replace(azure_settings.azure, aci_dns_label="diabetes-qa-sim")
    )
    client = container_instance_client(settings)
    endpoint = deploy_aci(settings, client, published, pull_credential(simazure, settings))
    assert endpoint.url == "http://diabetes-qa-sim.westeurope.azurecontainer.simazure.test:8000"
    checked = smoke_test(endpoint.url, settings.scoring_key, published.version, timeout=120)
    assert checked.ok, checked.reason
    # The secure value reached the container but is never returned.
    group = client.container_groups.get(settings.azure.resource_group, settings.azure.aci_name)
    assert {e.name: e.secure_value for e in group.containers[0].environment_variables}[
        "DIABETES_MLOPS_SCORING_KEY"
    ] is None
    assert simazure.gateway.refused == []


def test_aci_refuses_an_image_it_cannot_pull(
    simazure: SimAzure, azure_settings: Settings, published: Published
) -> None:
    wrong = pull_credential(simazure, azure_settings, password="wrong")
    with pytest.raises(DeployError, match="not accessible"):
        deploy_aci(azure_settings, container_instance_client(azure_settings), published, wrong)


def test_an_aks_deployment_rolls_out_and_passes_the_smoke_test(
    simazure: SimAzure, azure_settings: Settings, published: Published
) -> None:
    target = AzureTarget(azure_settings)
    endpoint = target.deploy("production", published)
    checked = smoke_test(endpoint.url, azure_settings.scoring_key, published.version, timeout=120)
    assert checked.ok, checked.reason
    assert endpoint.image == published.image
    pods = simazure.kube.pods[
        f"/apis/apps/v1/namespaces/{azure_settings.azure.aks_namespace}/deployments/diabetes-scoring"
    ]
    assert pods and all(pod.image == published.image for _, pod in pods)  # replicas: the HPA's (not simulated)
    assert simazure.gateway.refused == []
