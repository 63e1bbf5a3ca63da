"""Model registries: the ``Registry`` protocol, the local default and (with the azure extra) Azure ML."""

from __future__ import annotations

from typing import TYPE_CHECKING

from diabetes_mlops.registry.base import ModelVersion, Registry, parse_model_ref

if TYPE_CHECKING:
    from diabetes_mlops.config import Settings

__all__ = ["ModelVersion", "Registry", "open_registry", "parse_model_ref"]


def open_registry(settings: Settings) -> Registry:
    """The registry the settings name: ``local`` (a directory under the home) or ``azureml``."""
    if settings.registry_backend == "local":
        from diabetes_mlops.registry.local import LocalRegistry

        return LocalRegistry(settings.registry_dir)
    from diabetes_mlops.registry.azureml import AzureMLRegistry

    return AzureMLRegistry.from_settings(settings)
