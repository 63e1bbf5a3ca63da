"""Every Azure client is built here, from settings and a credential (``DefaultAzureCredential`` by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from diabetes_mlops.config import ENV_PREFIX
from diabetes_mlops.errors import ConfigError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.containerregistry import ContainerRegistryClient
    from azure.core.credentials import TokenCredential
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.containerservice import ContainerServiceClient

    from diabetes_mlops.config import Settings


def require(settings: Settings, name: str) -> Any:
    """The value of setting ``name``, or a ConfigError naming the setting and its environment variable."""
    value = getattr(settings, name)
    if value in (None, ""):
        raise ConfigError(
            f"setting {name!r} is required for Azure: set it in mlops.toml or the environment "
            f"variable {ENV_PREFIX}{name.upper()}"
        )
    return value


def default_credential() -> TokenCredential:
    """``DefaultAzureCredential``: environment (a service principal), workload or managed identity, az login."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:  # the extra is optional; say how to get it
        raise ConfigError("Azure support needs the azure extra: pip install 'diabetes-mlops[azure]'") from exc
    return DefaultAzureCredential()


def ml_client(settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any) -> MLClient:
    """The Azure ML workspace client: from ``azure_config_file`` (Azure ML's config.json) or the three settings."""
    from azure.ai.ml import MLClient

    credential = credential or default_credential()
    if settings.azure_config_file is not None:
        if not settings.azure_config_file.is_file():
            raise ConfigError(f"setting 'azure_config_file': {settings.azure_config_file} does not exist")
        return MLClient.from_config(credential, path=str(settings.azure_config_file), **client_kwargs)
    return MLClient(
        credential,
        subscription_id=require(settings, "azure_subscription_id"),
        resource_group_name=require(settings, "azure_resource_group"),
        workspace_name=require(settings, "azure_workspace"),
        **client_kwargs,
    )


def container_instance_client(
    settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any
) -> ContainerInstanceManagementClient:
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient

    return ContainerInstanceManagementClient(
        credential or default_credential(), require(settings, "azure_subscription_id"), **client_kwargs
    )


def container_service_client(
    settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any
) -> ContainerServiceClient:
    from azure.mgmt.containerservice import ContainerServiceClient

    return ContainerServiceClient(
        credential or default_credential(), require(settings, "azure_subscription_id"), **client_kwargs
    )


def container_registry_client(
    settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any
) -> ContainerRegistryManagementClient:
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient

    return ContainerRegistryManagementClient(
        credential or default_credential(), require(settings, "azure_subscription_id"), **client_kwargs
    )


def container_registry_data_client(
    settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any
) -> ContainerRegistryClient:
    """The ACR data-plane client (tags, manifests) of ``azure_acr_name``."""
    from azure.containerregistry import ContainerRegistryClient

    from diabetes_mlops.deploy.image import login_server

    return ContainerRegistryClient(
        f"https://{login_server(settings)}",
        credential or default_credential(),
        audience="https://management.azure.com",
        **client_kwargs,
    )
