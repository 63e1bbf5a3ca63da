"""The Azure cloud the kit talks to, chosen by one setting: every client takes its endpoints from here.

``azure_cloud`` is ``public``, ``china``, ``usgov`` or the https URL of an ARM metadata document
(``https://<arm>/metadata/endpoints?api-version=...``), which sovereign and private clouds publish. A document
is fetched once per process; its ``resourceManager``, ``authentication.loginEndpoint`` and ``suffixes`` give
the ARM base URL and token scope, the Entra ID authority, and the Blob, ACR and Key Vault host names.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from diabetes_mlops.errors import ConfigError

METADATA_TIMEOUT_SECONDS = 30.0
# ARM's metadata document lists every cloud it knows at this version (one cloud at 2022-09-01); Azure ML's own
# libraries parse the list.
LIST_API_VERSION = "2019-05-01"


@dataclass(frozen=True)
class Cloud:
    """The endpoints of one Azure cloud."""

    name: str
    portal: str
    resource_manager: str
    authority_host: str
    storage_suffix: str
    acr_suffix: str
    keyvault_suffix: str
    custom: bool = False

    @property
    def arm_scope(self) -> str:
        """The token scope of Azure Resource Manager in this cloud."""
        return self.resource_manager.rstrip("/") + "/.default"

    @property
    def ml_resource(self) -> str:
        """Azure ML's token audience, built from the portal's domain as azure-ai-ml builds it."""
        return "https://ml.azure." + ".".join(urlsplit(self.portal).netloc.split(".")[2:])

    def blob_account_url(self, account: str) -> str:
        return f"https://{account}.blob.{self.storage_suffix}"

    def acr_login_server(self, registry: str) -> str:
        return f"{registry}.{self.acr_suffix}"

    def key_vault_url(self, vault: str) -> str:
        return f"https://{vault}.{self.keyvault_suffix}"

    def ml_client_kwargs(self) -> dict[str, Any]:
        """What ``MLClient`` needs to use this cloud (it then sets its own base URL and scopes)."""
        return {
            "cloud": self.name,
            "cloud_metadata": {
                "azure_portal": self.portal,
                "resource_manager": self.resource_manager,
                "active_directory": self.authority_host,
                "aml_resource_id": self.ml_resource,
                "storage_endpoint": self.storage_suffix,
                "registry_discovery_endpoint": self.resource_manager,
            },
        }

    def arm_client_kwargs(self) -> dict[str, Any]:
        """What an azure-mgmt client needs: the ARM base URL and the scope its tokens are for."""
        return {"base_url": self.resource_manager.rstrip("/"), "credential_scopes": [self.arm_scope]}

    def credential_kwargs(self) -> dict[str, Any]:
        """What an azure-identity credential needs: the authority, and no discovery call to the public cloud."""
        kwargs: dict[str, Any] = {"authority": self.authority_host}
        if self.custom:  # MSAL would ask login.microsoftonline.com whether a private authority is known
            kwargs["disable_instance_discovery"] = True
        return kwargs


KNOWN_CLOUDS = {
    "public": Cloud(
        "AzureCloud",
        "https://portal.azure.com/",
        "https://management.azure.com/",
        "https://login.microsoftonline.com/",
        "core.windows.net",
        "azurecr.io",
        "vault.azure.net",
    ),
    "china": Cloud(
        "AzureChinaCloud",
        "https://portal.azure.cn/",
        "https://management.chinacloudapi.cn/",
        "https://login.chinacloudapi.cn/",
        "core.chinacloudapi.cn",
        "azurecr.cn",
        "vault.azure.cn",
    ),
    "usgov": Cloud(
        "AzureUSGovernment",
        "https://portal.azure.us/",
        "https://management.usgovcloudapi.net/",
        "https://login.microsoftonline.us/",
        "core.usgovcloudapi.net",
        "azurecr.us",
        "vault.usgovcloudapi.net",
    ),
}


def valid_setting(value: str) -> bool:
    """True for a known cloud's name or an https URL (a metadata document)."""
    return value in KNOWN_CLOUDS or (value.startswith("https://") and bool(urlsplit(value).netloc))


def cloud_from_metadata(document: Any, url: str) -> Cloud:
    """The cloud an ARM metadata document describes (one cloud, or a list whose entry serves ``url``)."""
    entries = document if isinstance(document, list) else [document]
    host = urlsplit(url).netloc
    chosen = next((e for e in entries if urlsplit(str(e.get("resourceManager", ""))).netloc == host), entries[0])
    try:
        return Cloud(
            name=str(chosen["name"]),
            portal=str(chosen["portal"]),
            resource_manager=str(chosen["resourceManager"]),
            authority_host=str(chosen["authentication"]["loginEndpoint"]),
            storage_suffix=str(chosen["suffixes"]["storage"]),
            acr_suffix=str(chosen["suffixes"]["acrLoginServer"]),
            keyvault_suffix=str(chosen["suffixes"]["keyVaultDns"]).lstrip("."),
            custom=True,
        )
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"setting 'azure_cloud': {url} is not an ARM metadata document (no {exc})") from None


@functools.lru_cache(maxsize=8)
def _fetch(url: str) -> Cloud:
    import urllib.request

    try:
        # A new opener reads the proxy variables now; urlopen's is fixed at the process's first call.
        with urllib.request.build_opener().open(url, timeout=METADATA_TIMEOUT_SECONDS) as response:
            document = json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"setting 'azure_cloud': cannot read the metadata document {url}: {exc}") from None
    return cloud_from_metadata(document, url)


def resolve(setting: str) -> Cloud:
    """The cloud a setting names; a metadata URL is read once per process."""
    if setting in KNOWN_CLOUDS:
        return KNOWN_CLOUDS[setting]
    if not valid_setting(setting):
        raise ConfigError(f"setting 'azure_cloud' must be public, china, usgov or an https URL, got {setting!r}")
    return _fetch(setting)


def export_to_azureml(setting: str) -> None:
    """Name the cloud to Azure ML's own libraries, in this process and its children, which read the environment:
    ``AZUREML_CURRENT_CLOUD``, and for a custom cloud ``ARM_CLOUD_METADATA_URL`` (the document in its list form,
    the one form both azure-ai-ml and azureml-mlflow parse).

    azureml-mlflow reads ``ARM_CLOUD_METADATA_URL`` once, when it is imported: MLflow imports its plugins on
    ``import mlflow``, and azure-ai-ml imports it to read a workspace, so call this before either."""
    found = resolve(setting)
    os.environ["AZUREML_CURRENT_CLOUD"] = found.name
    if found.custom:
        parts = urlsplit(setting)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "api-version"] + [("api-version", LIST_API_VERSION)]
        os.environ["ARM_CLOUD_METADATA_URL"] = urlunsplit(parts._replace(query=urlencode(query)))
