"""QA on Azure Container Instances: one container group, updated in place on each deployment where ACI allows.

The group runs the scoring image on port 8000 behind a public DNS label; the scoring key is a secure
environment variable (ACI never returns its value). The user-assigned identity ``azure_aci_identity`` is the
group's: its container gets tokens for it (Blob for the scoring logs, ``AZURE_CLIENT_ID`` from
``azure_identity_client_id`` choosing it) and pulls the image with it; without one the image is pulled with the
registry's admin credentials and the container has no Azure identity.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from diabetes_mlops import progress
from diabetes_mlops.azure.clients import require
from diabetes_mlops.deploy.bundle import SERVICE_PORT
from diabetes_mlops.deploy.targets.base import LOG_TAIL_LINES, Endpoint, Published, container_environment, log_tail
from diabetes_mlops.errors import ConfigError, DeployError

if TYPE_CHECKING:
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient
    from azure.mgmt.containerinstance.models import ContainerGroup, ContainerProbe, ImageRegistryCredential
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient

    from diabetes_mlops.config import Settings

MODEL_TAG = "model"  # the group's tag naming the model version it serves, as NAME:VERSION
RESTARTED_LOG_WAIT_SECONDS = 10.0  # for a restarted container's first output, before reporting it without


def dns_label(settings: Settings) -> str:
    """The DNS label: configured, or the group name plus a hash of the resource group (unique per region)."""
    if settings.azure.aci_dns_label:
        return settings.azure.aci_dns_label
    scope = f"{settings.azure.subscription_id}/{settings.azure.resource_group}".encode()
    return f"{settings.azure.aci_name}-{hashlib.sha256(scope).hexdigest()[:8]}"


def registry_credential(
    settings: Settings, registry_client: ContainerRegistryManagementClient | None = None
) -> ImageRegistryCredential:
    """How ACI pulls from ACR: the configured user-assigned identity, else the admin user's password."""
    from azure.mgmt.containerinstance.models import ImageRegistryCredential

    from diabetes_mlops.deploy.image import login_server

    server = login_server(settings)
    if settings.azure.aci_identity:
        return ImageRegistryCredential(server=server, identity=settings.azure.aci_identity)
    if registry_client is None:
        raise ConfigError(
            "ACI needs a way to pull from ACR: set azure_aci_identity (DIABETES_MLOPS_AZURE_ACI_IDENTITY) "
            "or enable the registry's admin user"
        )
    creds = registry_client.registries.list_credentials(
        require(settings.azure, "resource_group"), require(settings.azure, "acr_name")
    )
    if not creds.passwords:
        raise ConfigError(f"ACR {settings.azure.acr_name} has no admin password: enable its admin user")
    return ImageRegistryCredential(server=server, username=creds.username, password=creds.passwords[0].value)


def container_group(settings: Settings, published: Published, credential: ImageRegistryCredential) -> ContainerGroup:
    """The group: one container, CPU and memory from settings, probes on /ready and /health, public port 8000."""
    from azure.mgmt.containerinstance import models as m

    if published.image is None:
        raise DeployError(f"{published.name} version {published.version} has no published image")

    def probe(path: str) -> ContainerProbe:
        http = m.ContainerHttpGet(path=path, port=SERVICE_PORT, scheme="http")
        return m.ContainerProbe(
            http_get=http, initial_delay_seconds=5, period_seconds=10, failure_threshold=3, timeout_seconds=5
        )

    container = m.Container(
        name="scoring",
        image=published.image,
        resources=m.ResourceRequirements(
            requests=m.ResourceRequests(cpu=settings.azure.aci_cpu, memory_in_gb=settings.azure.aci_memory_gb)
        ),
        ports=[m.ContainerPort(port=SERVICE_PORT, protocol="TCP")],
        environment_variables=[  # ACI never returns a secure value
            m.EnvironmentVariable(name=v.name, secure_value=v.value)
            if v.secret
            else m.EnvironmentVariable(name=v.name, value=v.value)
            for v in container_environment(settings, SERVICE_PORT)
        ],
        readiness_probe=probe("/ready"),
        liveness_probe=probe("/health"),
    )
    identity = None
    if settings.azure.aci_identity:
        identity = m.ContainerGroupIdentity(
            type="UserAssigned", user_assigned_identities={settings.azure.aci_identity: m.UserAssignedIdentities()}
        )
    return m.ContainerGroup(
        location=require(settings.azure, "location"),
        containers=[container],
        os_type="Linux",
        restart_policy="Always",
        ip_address=m.IpAddress(
            ports=[m.Port(port=SERVICE_PORT, protocol="TCP")], type="Public", dns_name_label=dns_label(settings)
        ),
        image_registry_credentials=[credential],
        identity=identity,
        tags={"managed-by": "diabetes-mlops", MODEL_TAG: f"{published.name}:{published.version}"},
    )


def _current(client: ContainerInstanceManagementClient, group: str, name: str) -> ContainerGroup | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return client.container_groups.get(group, name)
    except ResourceNotFoundError:
        return None


def _endpoint(group: ContainerGroup) -> Endpoint | None:
    """The endpoint a group that is up serves; None while it has no public address or model tag."""
    model = (group.tags or {}).get(MODEL_TAG, "")
    name, _, version = model.rpartition(":")
    if group.provisioning_state != "Succeeded" or not group.ip_address or not group.ip_address.fqdn or not name:
        return None
    url = f"http://{group.ip_address.fqdn}:{SERVICE_PORT}"
    return Endpoint("qa", "azure", url, name, int(version), group.containers[0].image)


def _fixed(group: ContainerGroup) -> tuple[Any, ...]:
    """What ACI changes only by deleting the group and creating it again (os type, restart policy, network
    profile, CPU, memory or GPU): when the new body keeps these, the group is updated in place."""
    sizes = [(c.resources.requests.cpu, c.resources.requests.memory_in_gb, c.resources.requests.gpu)
             for c in group.containers]  # fmt: skip
    return group.os_type, group.restart_policy or "Always", group.subnet_ids, sizes


def deploy_aci(
    settings: Settings,
    client: ContainerInstanceManagementClient,
    published: Published,
    credential: ImageRegistryCredential,
    **poller_kwargs: Any,
) -> Endpoint:
    """Create or update the group and wait until it is provisioned: in place (its address kept, its container
    restarted) when only the image, variables or tags change, else by delete and create as ACI requires."""
    from azure.core.exceptions import HttpResponseError

    group, name, timeout = (
        require(settings.azure, "resource_group"),
        settings.azure.aci_name,
        settings.azure.deploy_timeout,
    )
    body = container_group(settings, published, credential)
    try:
        with progress.task(f"ACI group {name}"):
            found = _current(client, group, name)
            # A group that stopped (it ran with a restart policy other than Always) cannot be updated either.
            stopped = found is not None and found.instance_view is not None and found.instance_view.state != "Running"
            replace = found is not None and (stopped or _fixed(found) != _fixed(body))
            if replace:
                progress.update("deleting the old group (a new size or policy needs a new group)")
                client.container_groups.begin_delete(group, name, **poller_kwargs).result(timeout=timeout)
            progress.update("updating" if found is not None and not replace else "creating")
            client.container_groups.begin_create_or_update(group, name, body, **poller_kwargs).result(timeout=timeout)
            created = client.container_groups.get(group, name)
    except HttpResponseError as exc:  # the service's message says what it refused; it holds no secret
        raise DeployError(f"ACI group {name}: {exc.message}") from None
    endpoint = _endpoint(created)
    if endpoint is None:
        raise DeployError(f"ACI group {name} is {created.provisioning_state} without a public address")
    return endpoint


def aci_endpoint(settings: Settings, client: ContainerInstanceManagementClient) -> Endpoint | None:
    """What the QA group serves now; None when there is no group."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        found = client.container_groups.get(require(settings.azure, "resource_group"), settings.azure.aci_name)
    except ResourceNotFoundError:
        return None
    return _endpoint(found)


def delete_aci(settings: Settings, client: ContainerInstanceManagementClient, **poller_kwargs: Any) -> bool:
    """Delete the QA group; False when there was none."""
    group, name = require(settings.azure, "resource_group"), settings.azure.aci_name
    if _current(client, group, name) is None:
        return False
    client.container_groups.begin_delete(group, name, **poller_kwargs).result(timeout=settings.azure.deploy_timeout)
    return True


def aci_diagnosis(settings: Settings, client: ContainerInstanceManagementClient) -> str:
    """The QA container's state, restart count, warning events and last log lines, for a failure message."""
    from azure.core.exceptions import HttpResponseError

    group, name = require(settings.azure, "resource_group"), settings.azure.aci_name
    try:
        found = _current(client, group, name)
        if found is None:
            return f"\n(ACI group {name} does not exist)"
        container = found.containers[0]
        logs = client.containers.list_logs(group, name, container.name, tail=LOG_TAIL_LINES).content or ""
        restarted = bool(container.instance_view and container.instance_view.restart_count)
        deadline = time.monotonic() + RESTARTED_LOG_WAIT_SECONDS
        # ACI shows only the current run's log: one that restarted a moment ago has written nothing yet.
        while not logs and restarted and time.monotonic() < deadline:
            time.sleep(0.5)
            logs = client.containers.list_logs(group, name, container.name, tail=LOG_TAIL_LINES).content or ""
    except HttpResponseError as exc:  # the smoke test failed already: this is help, not a second failure
        return f"\n(the container could not be inspected: {exc.message})"
    view = container.instance_view
    lines: list[str] = []
    if view is not None and view.current_state is not None:
        state = view.current_state
        detail = f" ({state.detail_status})" if state.detail_status else ""
        line = f"\nContainer {container.name}: {state.state}{detail}, restarted {view.restart_count or 0} times"
        if view.previous_state is not None and view.previous_state.exit_code is not None:
            line += f", last exit code {view.previous_state.exit_code}"
        lines.append(line)
        lines += [f"\n  {e.name}: {e.message} (x{e.count})" for e in view.events or [] if e.type == "Warning"]
    return "".join(lines) + log_tail(logs)
