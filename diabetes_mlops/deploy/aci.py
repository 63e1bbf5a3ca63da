"""QA on Azure Container Instances: one container group per environment, replaced on each deployment.

The group runs the scoring image on port 8000 behind a public DNS label; the scoring key is a secure
environment variable (ACI never returns its value); the image is pulled with a managed identity when
``azure_aci_identity`` names one, else with the registry's admin credentials.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from diabetes_mlops.azure.clients import require
from diabetes_mlops.errors import ConfigError, MlopsError

if TYPE_CHECKING:
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient
    from azure.mgmt.containerinstance.models import ContainerGroup, ImageRegistryCredential
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient

    from diabetes_mlops.config import Settings

PORT = 8000
SmokeTest = Callable[..., Any]


class DeployFailed(MlopsError):
    """A deployment did not come up, or came up and failed its smoke test."""


@dataclass(frozen=True)
class AciDeployment:
    """A container group that is up: where to reach it and what the smoke test said."""

    name: str
    image: str
    fqdn: str
    url: str
    smoke_ok: bool | None = None
    smoke_reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def dns_label(settings: Settings) -> str:
    """The DNS label: configured, or the group name plus a hash of the resource group (unique per region)."""
    if settings.azure_aci_dns_label:
        return settings.azure_aci_dns_label
    scope = f"{settings.azure_subscription_id}/{settings.azure_resource_group}".encode()
    return f"{settings.azure_aci_name}-{hashlib.sha256(scope).hexdigest()[:8]}"


def registry_credential(
    settings: Settings, registry_client: ContainerRegistryManagementClient | None = None
) -> ImageRegistryCredential:
    """How ACI pulls from ACR: the configured user-assigned identity, else the admin user's password."""
    from azure.mgmt.containerinstance.models import ImageRegistryCredential

    server = f"{require(settings, 'azure_acr_name')}.azurecr.io"
    if settings.azure_aci_identity:
        return ImageRegistryCredential(server=server, identity=settings.azure_aci_identity)
    if registry_client is None:
        raise ConfigError(
            "ACI needs a way to pull from ACR: set azure_aci_identity (DIABETES_MLOPS_AZURE_ACI_IDENTITY) "
            "or enable the registry's admin user"
        )
    creds = registry_client.registries.list_credentials(
        require(settings, "azure_resource_group"), settings.azure_acr_name
    )
    return ImageRegistryCredential(server=server, username=creds.username, password=creds.passwords[0].value)


def container_group(settings: Settings, image: str, credential: ImageRegistryCredential) -> ContainerGroup:
    """The group: one container, CPU and memory from settings, probes on /ready and /health, public port 8000."""
    from azure.mgmt.containerinstance import models as m

    scoring_key = require(settings, "scoring_key")  # a public endpoint is never left open
    probe = {"initial_delay_seconds": 5, "period_seconds": 10, "failure_threshold": 3, "timeout_seconds": 5}
    container = m.Container(
        name="scoring",
        image=image,
        resources=m.ResourceRequirements(
            requests=m.ResourceRequests(cpu=settings.azure_aci_cpu, memory_in_gb=settings.azure_aci_memory_gb)
        ),
        ports=[m.ContainerPort(port=PORT, protocol="TCP")],
        environment_variables=[
            m.EnvironmentVariable(name="PORT", value=str(PORT)),
            m.EnvironmentVariable(name="DIABETES_MLOPS_SCORING_KEY", secure_value=scoring_key),
        ],
        readiness_probe=m.ContainerProbe(http_get=m.ContainerHttpGet(path="/ready", port=PORT, scheme="http"), **probe),
        liveness_probe=m.ContainerProbe(http_get=m.ContainerHttpGet(path="/health", port=PORT, scheme="http"), **probe),
    )
    identity = None
    if credential.identity:
        identity = m.ContainerGroupIdentity(
            type="UserAssigned", user_assigned_identities={credential.identity: m.UserAssignedIdentities()}
        )
    return m.ContainerGroup(
        location=require(settings, "azure_location"),
        containers=[container],
        os_type="Linux",
        restart_policy="Always",
        ip_address=m.IpAddress(
            ports=[m.Port(port=PORT, protocol="TCP")], type="Public", dns_name_label=dns_label(settings)
        ),
        image_registry_credentials=[credential],
        identity=identity,
        tags={"managed-by": "diabetes-mlops", "image": image.rsplit("/", 1)[-1]},
    )


def _exists(client: ContainerInstanceManagementClient, group: str, name: str) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        client.container_groups.get(group, name)
    except ResourceNotFoundError:
        return False
    return True


def deploy_aci(
    settings: Settings,
    client: ContainerInstanceManagementClient,
    image: str,
    credential: ImageRegistryCredential,
    smoke: SmokeTest | None = None,
    expect_version: int | None = None,
    **poller_kwargs: Any,
) -> AciDeployment:
    """Replace the group (delete, then create: ACI cannot change ports or sizes in place), wait, smoke test."""
    from azure.core.exceptions import HttpResponseError

    group, name, timeout = (
        require(settings, "azure_resource_group"),
        settings.azure_aci_name,
        settings.azure_deploy_timeout,
    )
    body = container_group(settings, image, credential)
    try:
        if _exists(client, group, name):
            client.container_groups.begin_delete(group, name, **poller_kwargs).result(timeout=timeout)
        client.container_groups.begin_create_or_update(group, name, body, **poller_kwargs).result(timeout=timeout)
        created = client.container_groups.get(group, name)
    except HttpResponseError as exc:  # the service's message says what it refused; it holds no secret
        raise DeployFailed(f"ACI group {name}: {exc.message}") from None
    if created.provisioning_state != "Succeeded" or not created.ip_address or not created.ip_address.fqdn:
        raise DeployFailed(f"ACI group {name} is {created.provisioning_state} without a public address")
    fqdn = created.ip_address.fqdn
    url = f"http://{fqdn}:{PORT}"
    if smoke is None:
        from diabetes_mlops.deploy.smoke import smoke_test as smoke
    result = smoke(url, key=settings.scoring_key, expect_version=expect_version, timeout=min(timeout, 300.0))
    if not result.ok:
        raise DeployFailed(f"ACI group {name} at {url} failed its smoke test: {result.reason}")
    return AciDeployment(name, image, fqdn, url, result.ok, result.reason)


def delete_aci(settings: Settings, client: ContainerInstanceManagementClient, **poller_kwargs: Any) -> bool:
    """Delete the QA group; False when there was none."""
    group, name = require(settings, "azure_resource_group"), settings.azure_aci_name
    if not _exists(client, group, name):
        return False
    client.container_groups.begin_delete(group, name, **poller_kwargs).result(timeout=settings.azure_deploy_timeout)
    return True
