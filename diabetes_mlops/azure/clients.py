"""Every Azure client is built here, from settings and a credential (``DefaultAzureCredential`` by default)."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from diabetes_mlops.config import AZURE_PREFIX, ENV_PREFIX, AzureSettings, load_settings
from diabetes_mlops.errors import ConfigError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.containerregistry import ContainerRegistryClient
    from azure.core.credentials import TokenCredential
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.containerregistrytasks import ContainerRegistryTasksMgmtClient
    from azure.mgmt.containerservice import ContainerServiceClient

    from diabetes_mlops.azure.clouds import Cloud
    from diabetes_mlops.config import Settings

# Azure ML's config.json names the subscription, resource group and workspace with these keys.
CONFIG_FILE_FIELDS = ("subscription_id", "resource_group", "workspace_name")


def require(settings: Settings | AzureSettings, name: str) -> Any:
    """The value of ``settings.<name>``, or a ConfigError naming the setting as users set it and its variable."""
    value = getattr(settings, name)
    if value in (None, ""):
        key = AZURE_PREFIX + name if isinstance(settings, AzureSettings) else name
        raise ConfigError(
            f"setting {key!r} is required for Azure: set it in mlops.toml or the environment "
            f"variable {ENV_PREFIX}{key.upper()}"
        )
    return value


def cloud(settings: Settings) -> Cloud:
    """The cloud ``azure_cloud`` names: its endpoints for every client built here."""
    from diabetes_mlops.azure.clouds import resolve

    return resolve(settings.azure.cloud)


def default_credential(settings: Settings | None = None) -> TokenCredential:
    """``DefaultAzureCredential`` for the configured cloud: environment (a service principal), workload or
    managed identity, az login."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:  # the extra is optional; say how to get it
        raise ConfigError("Azure support needs the azure extra: pip install 'diabetes-mlops[azure]'") from exc
    return DefaultAzureCredential(**cloud(settings or load_settings()).credential_kwargs())


def with_workspace(settings: Settings) -> Settings:
    """The settings with subscription, resource group and workspace filled in from ``azure_config_file``."""
    path = settings.azure.config_file
    if path is None:
        return settings
    if not path.is_file():
        raise ConfigError(f"setting 'azure_config_file': {path} does not exist")
    try:
        found = json.loads(path.read_text())
        subscription, group, workspace = (str(found[field]) for field in CONFIG_FILE_FIELDS)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"setting 'azure_config_file': {path} lacks {exc} (Azure ML's config.json)") from None
    azure = dataclasses.replace(
        settings.azure, config_file=None, subscription_id=subscription, resource_group=group, workspace=workspace
    )
    return dataclasses.replace(settings, azure=azure)


def ml_client(settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any) -> MLClient:
    """The Azure ML workspace client: from ``azure_config_file`` (Azure ML's config.json) or the three settings."""
    from azure.ai.ml import MLClient

    from diabetes_mlops.azure.clouds import export_to_azureml

    settings = with_workspace(settings)
    chosen = cloud(settings)
    # MLClient puts the cloud's name in AZUREML_CURRENT_CLOUD for this process and its children; a child's
    # `import azure.ai.ml` (or `import mlflow` with Azure ML's plugin) resolves it at once: name it fully first.
    export_to_azureml(settings.azure.cloud)
    return MLClient(
        credential or default_credential(settings),
        subscription_id=require(settings.azure, "subscription_id"),
        resource_group_name=require(settings.azure, "resource_group"),
        workspace_name=require(settings.azure, "workspace"),
        **{**chosen.ml_client_kwargs(), **client_kwargs},
    )


def container_instance_client(
    settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any
) -> ContainerInstanceManagementClient:
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient

    return ContainerInstanceManagementClient(*_arm_args(settings, credential), **_arm_kwargs(settings, client_kwargs))


def container_service_client(
    settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any
) -> ContainerServiceClient:
    from azure.mgmt.containerservice import ContainerServiceClient

    return ContainerServiceClient(*_arm_args(settings, credential), **_arm_kwargs(settings, client_kwargs))


def container_registry_client(
    settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any
) -> ContainerRegistryManagementClient:
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient

    return ContainerRegistryManagementClient(*_arm_args(settings, credential), **_arm_kwargs(settings, client_kwargs))


def container_registry_tasks_client(
    settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any
) -> ContainerRegistryTasksMgmtClient:
    """ACR Tasks: the source upload URL, build runs and their logs."""
    from azure.mgmt.containerregistrytasks import ContainerRegistryTasksMgmtClient

    return ContainerRegistryTasksMgmtClient(*_arm_args(settings, credential), **_arm_kwargs(settings, client_kwargs))


def container_registry_data_client(
    settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any
) -> ContainerRegistryClient:
    """The ACR data-plane client (tags, manifests) of ``azure_acr_name``; its audience is the cloud's ARM."""
    from azure.containerregistry import ContainerRegistryClient

    from diabetes_mlops.deploy.image import login_server

    return ContainerRegistryClient(
        f"https://{login_server(settings)}",
        credential or default_credential(settings),
        audience=cloud(settings).resource_manager.rstrip("/"),
        **client_kwargs,
    )


def _arm_args(settings: Settings, credential: TokenCredential | None) -> tuple[TokenCredential, str]:
    settings = with_workspace(settings)
    return credential or default_credential(settings), require(settings.azure, "subscription_id")


def _arm_kwargs(settings: Settings, client_kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**cloud(settings).arm_client_kwargs(), **client_kwargs}
