"""The Azure target on the simulated Azure: the bundle built by an ACR run and resolved to a digest, run by
ACI and by an AKS Deployment, each answering the kit's smoke test."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance.models import EnvironmentVariable, ImageRegistryCredential

from diabetes_mlops.azure.clients import container_instance_client
from diabetes_mlops.config import Settings
from diabetes_mlops.deploy.aci import container_group, deploy_aci
from diabetes_mlops.deploy.bundle import write_bundle
from diabetes_mlops.deploy.image import login_server, publish_image
from diabetes_mlops.deploy.release import ReleaseFailed, release
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
    checked = smoke_test(endpoint.url, target.scoring_key("production"), published.version, timeout=120)
    assert checked.ok, checked.reason
    assert endpoint.image == published.image
    pods = simazure.kube.pods[
        f"/apis/apps/v1/namespaces/{azure_settings.azure.aks_namespace}/deployments/diabetes-scoring"
    ]
    assert pods and all(pod.image == published.image for _, pod in pods)  # replicas: the HPA's (not simulated)
    assert simazure.gateway.refused == []


class CorruptBundle(AzureTarget):
    """The Azure target with a bundle fault: the model file in the image is cut short, so the app exits at start."""

    def publish(self, registry: LocalRegistry, name: str, version: int, out_dir: Path) -> Published:
        bundle = write_bundle(registry, name, version, out_dir, azure=True)
        for model_file in (bundle / "model").rglob("*.skops"):
            model_file.write_bytes(model_file.read_bytes()[:100])
        built = publish_image(self.settings, bundle, name, version, self.credential)
        return Published(name, version, bundle, built.digest_ref)


def test_a_crashing_aci_container_is_restarted_and_the_release_reports_its_logs(
    simazure: SimAzure, azure_settings: Settings, tmp_path: Path
) -> None:
    """ACI provisions the group whatever the app does and restarts the container (policy Always); the QA smoke
    test fails, and the release's error carries the restart count, the exit code and the container's output."""
    settings = dataclasses.replace(azure_settings, smoke_timeout=12.0)
    version = register_model(settings)
    with pytest.raises(ReleaseFailed) as failed:
        release(settings, version, tmp_path / "run", stage="qa", target=CorruptBundle(settings))
    message = str(failed.value)
    assert "QA" in message and "smoke test failed" in message
    found = re.search(r"Container scoring: \w+.*, restarted (\d+) times, last exit code (\d+)", message)
    assert found and int(found[1]) >= 1 and int(found[2]) != 0, message
    assert "The last" in message and "lines of its log" in message
    client = container_instance_client(settings)
    group = client.container_groups.get(settings.azure.resource_group, settings.azure.aci_name)
    assert group.provisioning_state == "Succeeded" and group.instance_view.state == "Running"
    view = group.containers[0].instance_view
    assert view.restart_count >= 1 and view.previous_state.state == "Terminated"
    assert any(e.name == "BackOff" and e.type == "Warning" for e in view.events)
    logs = client.containers.list_logs(settings.azure.resource_group, settings.azure.aci_name, "scoring", tail=5)
    assert 0 < len(logs.content.splitlines()) <= 5 and logs.content.splitlines()[-1] in message


def test_a_running_aci_group_is_updated_in_place_and_a_size_change_needs_a_new_group(
    simazure: SimAzure, azure_settings: Settings, published: Published
) -> None:
    """A new image or variable on a running group is an in-place update (same address, 200); a CPU change is
    refused by ACI as Azure words it, so the kit deletes and creates the group instead."""
    client = container_instance_client(azure_settings)
    group, name = azure_settings.azure.resource_group, azure_settings.azure.aci_name
    credential = pull_credential(simazure, azure_settings)
    deploy_aci(azure_settings, client, published, credential)
    first = client.container_groups.get(group, name)
    body = container_group(azure_settings, published, credential)
    body.containers[0].environment_variables.append(EnvironmentVariable(name="EXTRA", value="1"))
    client.container_groups.begin_create_or_update(group, name, body).result()
    updated = client.container_groups.get(group, name)
    assert updated.ip_address.ip == first.ip_address.ip and updated.instance_view.state == "Running"
    body.containers[0].resources.requests.cpu = 2.0
    with pytest.raises(HttpResponseError) as refused:
        client.container_groups.begin_create_or_update(group, name, body).result()
    assert refused.value.error.code == "InvalidContainerGroupUpdate"
    assert "you must delete it first and then create a new one" in refused.value.message
    bigger = dataclasses.replace(azure_settings, azure=dataclasses.replace(azure_settings.azure, aci_cpu=2.0))
    endpoint = deploy_aci(bigger, client, published, credential)
    assert smoke_test(endpoint.url, bigger.scoring_key, published.version, timeout=120).ok
    now = client.container_groups.get(group, name)
    assert now.containers[0].resources.requests.cpu == 2.0


def test_a_crashing_aks_pod_stalls_the_rollout_and_the_error_shows_the_pod_and_its_logs(
    simazure: SimAzure, azure_settings: Settings, tmp_path: Path
) -> None:
    settings = dataclasses.replace(azure_settings, azure=dataclasses.replace(azure_settings.azure, deploy_timeout=20.0))
    version = register_model(settings)
    target = CorruptBundle(settings)
    broken = target.publish(LocalRegistry(settings.registry_dir), settings.model_name, version, tmp_path / "bundle")
    with pytest.raises(DeployError) as failed:
        target.deploy("production", broken)
    message = str(failed.value)
    assert "did not finish rolling out" in message
    # The kubelet restarted it; the log shown is of the run before the last restart (kubectl logs --previous).
    assert re.search(
        r"Pod diabetes-scoring-\w+: not ready, restarted [1-9]\d* times, waiting: CrashLoopBackOff", message
    )
    assert "checksum mismatch" in message.partition("lines of its log:")[2], message
