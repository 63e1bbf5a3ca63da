"""The local target: each environment is a supervised scoring server on 127.0.0.1 (``deploy.local``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.deploy import local
from diabetes_mlops.deploy.environments import require_same_environment
from diabetes_mlops.deploy.targets.base import Endpoint, Published, check_environment, log_tail
from diabetes_mlops.train import library_versions

if TYPE_CHECKING:
    from diabetes_mlops.config import Settings
    from diabetes_mlops.registry import Registry


class LocalTarget:
    """Serves registered versions straight from the local registry; the bundle is written for the record."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def publish(self, registry: Registry, name: str, version: int, out_dir: Path) -> Published:
        from diabetes_mlops.deploy.bundle import write_bundle

        # A release starts here: a port another home or program holds fails it before QA starts.
        local.check_ports(self.settings)
        entry = registry.get(name, version)
        require_same_environment(name, version, entry.library_versions, library_versions(), "this environment")
        return Published(name, version, write_bundle(registry, name, version, out_dir))

    def published(self, registry: Registry, name: str, version: int) -> Published | None:
        return Published(name, version)  # the registry itself is what a local deployment serves from

    def deploy(self, env: str, published: Published) -> Endpoint:
        running = local.deploy(self.settings, check_environment(env), published.name, published.version)
        return Endpoint(env, self.name, running.url, published.name, published.version, healthy=True)

    def undeploy(self, env: str) -> bool:
        return local.undeploy(self.settings, check_environment(env))

    def endpoint(self, env: str) -> Endpoint | None:
        check_environment(env)
        for found in local.endpoints(self.settings):
            if found.env == env:
                return Endpoint(env, self.name, found.url, found.model_name, found.model_version, None, found.healthy)
        return None

    def diagnose(self, env: str) -> str:
        return log_tail(local.log_text(self.settings, check_environment(env)))

    def scoring_key(self, env: str) -> str | None:
        return self.settings.scoring_key
