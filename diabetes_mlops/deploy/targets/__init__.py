"""Deploy targets: the ``DeployTarget`` protocol, the local default and (with the azure extra) Azure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from diabetes_mlops.deploy.targets.base import ENVIRONMENTS, TARGETS, DeployTarget, Endpoint, Published
from diabetes_mlops.errors import ConfigError

if TYPE_CHECKING:
    from diabetes_mlops.config import Settings

__all__ = ["ENVIRONMENTS", "TARGETS", "DeployTarget", "Endpoint", "Published", "open_target"]


def open_target(settings: Settings, target: str | None = None) -> DeployTarget:
    """The target named by ``target``, else by the ``deploy_target`` setting: ``local`` or ``azure``."""
    chosen = target or settings.deploy_target
    if chosen == "local":
        from diabetes_mlops.deploy.targets.local import LocalTarget

        return LocalTarget(settings)
    if chosen == "azure":
        from diabetes_mlops.deploy.targets.azure import AzureTarget

        return AzureTarget(settings)
    raise ConfigError(f"unknown deploy target {chosen!r}; targets are {', '.join(TARGETS)}")
