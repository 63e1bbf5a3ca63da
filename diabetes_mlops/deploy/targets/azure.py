"""The Azure target: QA on Azure Container Instances, production on AKS, images in ACR deployed by digest."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diabetes_mlops import progress
from diabetes_mlops.deploy.targets.base import Endpoint, Published, check_environment
from diabetes_mlops.errors import DeployError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from diabetes_mlops.azure.scoring_keys import ScoringKeys
    from diabetes_mlops.config import Settings
    from diabetes_mlops.registry import Registry


# How long clients that read the key from Key Vault have to move to a new one before the old is refused.
ROTATION_GRACE_SECONDS = 60.0


class AzureTarget:
    """Each environment is an Azure service; every client is built from settings and one Azure credential."""

    name = "azure"

    def __init__(self, settings: Settings, credential: TokenCredential | None = None, **client_kwargs: Any) -> None:
        self.settings = settings
        self._credential = credential
        self._client_kwargs = client_kwargs  # e.g. an azure-core transport
        self._access_checked = False
        self._keys: dict[str, ScoringKeys] = {}

    @cached_property
    def credential(self) -> TokenCredential:
        from diabetes_mlops.azure.clients import default_credential

        return self._credential or default_credential(self.settings)

    def _require_access(self) -> None:
        """Checked once per target, before its first publish or deployment: every role a release needs."""
        from diabetes_mlops.azure.access import require_access

        if not self._access_checked:
            require_access(self.settings, "release", self.credential, **self._client_kwargs)
            self._access_checked = True

    @cached_property
    def _kube(self) -> Any:
        from diabetes_mlops.azure.clients import container_service_client
        from diabetes_mlops.deploy.aks import kube_client

        client = container_service_client(self.settings, self.credential, **self._client_kwargs)
        return kube_client(self.settings, client, self.credential)

    def _aci(self) -> Any:
        from diabetes_mlops.azure.clients import container_instance_client

        return container_instance_client(self.settings, self.credential, **self._client_kwargs)

    def publish(self, registry: Registry, name: str, version: int, out_dir: Path) -> Published:
        from diabetes_mlops.deploy.bundle import write_bundle
        from diabetes_mlops.deploy.image import publish_image

        self._require_access()
        bundle = write_bundle(registry, name, version, out_dir, azure=True)
        built = publish_image(self.settings, bundle, name, version, self.credential, **self._client_kwargs)
        return Published(name, version, bundle, built.digest_ref)

    def published(self, registry: Registry, name: str, version: int) -> Published | None:
        from diabetes_mlops.deploy.image import image_by_digest

        image = image_by_digest(self.settings, name, version, self.credential, **self._client_kwargs)
        return Published(name, version, None, image) if image else None

    def scoring_keys(self, env: str) -> ScoringKeys:
        """The keys ``env``'s service takes: from Key Vault with ``azure_key_vault`` (made at the first release),
        else the ``scoring_key`` setting; read once per target."""
        from diabetes_mlops.azure.clients import require
        from diabetes_mlops.azure.scoring_keys import ScoringKeys, scoring_keys

        if env not in self._keys:
            if self.settings.azure.key_vault:
                self._keys[env] = scoring_keys(self.settings, env, self.credential, **self._client_kwargs)
            else:
                self._keys[env] = ScoringKeys(require(self.settings, "scoring_key"))
        return self._keys[env]

    def scoring_key(self, env: str) -> str | None:
        return self.scoring_keys(env).current

    def rotate_key(self, env: str, grace_seconds: float = ROTATION_GRACE_SECONDS) -> Endpoint | None:
        """A new key for ``env`` that loses no request. The service takes old and new keys before the vault
        hands the new one out, clients reading the vault have ``grace_seconds`` to move to it, then the service
        takes only the new. Returns what ``env`` serves, or None when nothing runs there (only the key changed).
        """
        from diabetes_mlops.azure.clients import require
        from diabetes_mlops.azure.scoring_keys import ScoringKeys, new_key, store_key

        require(self.settings.azure, "key_vault")
        self._require_access()
        serving = self.endpoint(check_environment(env))
        old, new = self.scoring_keys(env), new_key()
        published = Published(serving.name, serving.version, None, serving.image) if serving else None
        if published is not None:
            self._keys[env] = ScoringKeys(new, old.current)
            self._serving_with_key(self.deploy(env, published), new)
        version = store_key(self.settings, env, new, self.credential, **self._client_kwargs)
        self._keys[env] = ScoringKeys(new, version=version)
        if published is None:
            return None
        progress.update(f"{env}: the old key is taken for {grace_seconds:g} s more")
        time.sleep(grace_seconds)
        return self._serving_with_key(self.deploy(env, published), new)

    def _serving_with_key(self, endpoint: Endpoint, key: str) -> Endpoint:
        """``endpoint`` once it scores with ``key``: a rotation's next step waits for the last to take."""
        from diabetes_mlops.deploy.smoke import smoke_test

        checked = smoke_test(endpoint.url, key, endpoint.version, self.settings.smoke_timeout)
        if not checked.ok:
            raise DeployError(f"{endpoint.env}: the service does not take the new key: {checked.reason}")
        return endpoint

    def deploy(self, env: str, published: Published) -> Endpoint:
        self._require_access()
        if not published.image or "@sha256:" not in published.image:
            raise DeployError(f"{published.name}:{published.version} has no published image digest: publish it first")
        keys = self.scoring_keys(check_environment(env))
        settings = replace(self.settings, scoring_key=keys.current, scoring_previous_key=keys.previous)
        if env == "qa":
            from diabetes_mlops.azure.clients import container_registry_client
            from diabetes_mlops.deploy.aci import deploy_aci, registry_credential

            acr = None
            if not self.settings.azure.aci_identity:
                acr = container_registry_client(self.settings, self.credential, **self._client_kwargs)
            pull = registry_credential(settings, acr)
            return deploy_aci(settings, self._aci(), published, pull)
        from diabetes_mlops.deploy.aks import deploy_aks

        return deploy_aks(settings, self._kube, published)

    def undeploy(self, env: str) -> bool:
        if check_environment(env) == "qa":
            from diabetes_mlops.deploy.aci import delete_aci

            return delete_aci(self.settings, self._aci())
        from diabetes_mlops.deploy.aks import delete_aks

        return delete_aks(self.settings, self._kube)

    def endpoint(self, env: str) -> Endpoint | None:
        from diabetes_mlops.deploy.smoke import healthy

        if check_environment(env) == "qa":
            from diabetes_mlops.deploy.aci import aci_endpoint

            found = aci_endpoint(self.settings, self._aci())
        else:
            from diabetes_mlops.deploy.aks import aks_endpoint

            found = aks_endpoint(self.settings, self._kube)
        return replace(found, healthy=healthy(found.url)) if found else None

    def diagnose(self, env: str) -> str:
        if check_environment(env) == "qa":
            from diabetes_mlops.deploy.aci import aci_diagnosis

            return aci_diagnosis(self.settings, self._aci())
        from diabetes_mlops.deploy.aks import aks_diagnosis

        return aks_diagnosis(self.settings, self._kube)
