"""The cloud setting: each known cloud's endpoints, a custom cloud from its ARM metadata document, and every
client built from settings taking its endpoints from the same cloud."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import ResourceNotFoundError
from fakes import FakeCredential, FakeTransport

from diabetes_mlops.azure import clouds
from diabetes_mlops.azure.clients import (
    container_instance_client,
    container_registry_client,
    container_service_client,
    ml_client,
)
from diabetes_mlops.azure.clouds import KNOWN_CLOUDS, cloud_from_metadata, export_to_azureml, resolve
from diabetes_mlops.config import load_settings
from diabetes_mlops.deploy.image import login_server
from diabetes_mlops.errors import ConfigError

EXPECTED = {
    "public": (
        "https://management.azure.com",
        "https://login.microsoftonline.com/",
        "core.windows.net",
        "azurecr.io",
        "https://ml.azure.com",
    ),
    "china": (
        "https://management.chinacloudapi.cn",
        "https://login.chinacloudapi.cn/",
        "core.chinacloudapi.cn",
        "azurecr.cn",
        "https://ml.azure.cn",
    ),
    "usgov": (
        "https://management.usgovcloudapi.net",
        "https://login.microsoftonline.us/",
        "core.usgovcloudapi.net",
        "azurecr.us",
        "https://ml.azure.us",
    ),
}
SCOPE = {
    "azure_subscription_id": "sub-1",
    "azure_resource_group": "rg",
    "azure_workspace": "ws",
    "azure_acr_name": "acr1",
}


@pytest.fixture(autouse=True)
def _keep_the_sdk_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLClient records its cloud in the process environment; undo that after each test."""
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_known_cloud_gives_every_client_its_endpoints(name: str) -> None:
    arm, authority, storage, acr, ml = EXPECTED[name]
    settings = load_settings(azure_cloud=name, **SCOPE)
    cloud = resolve(name)
    assert cloud.arm_client_kwargs() == {"base_url": arm, "credential_scopes": [f"{arm}/.default"]}
    assert cloud.credential_kwargs() == {"authority": authority}
    assert cloud.blob_account_url("st1") == f"https://st1.blob.{storage}"
    assert login_server(settings) == f"acr1.{acr}"
    assert cloud.ml_resource == ml
    credential, transport = FakeCredential(), FakeTransport()
    calls = [
        lambda: container_instance_client(settings, credential, transport=transport).container_groups.get("rg", "a"),
        lambda: container_service_client(settings, credential, transport=transport).managed_clusters.get("rg", "a"),
        lambda: container_registry_client(settings, credential, transport=transport).registries.get("rg", "a"),
        lambda: ml_client(settings, credential, transport=transport, enable_telemetry=False).models.get("m", "1"),
    ]
    for call in calls:
        with pytest.raises(ResourceNotFoundError):  # nothing there: the address is what this checks
            call()
    assert {urlsplit(call.url).netloc for call in transport.calls} == {urlsplit(arm).netloc}
    assert set(credential.scopes) == {(f"{arm}/.default",)}


def test_the_sdk_knows_the_same_endpoints_for_the_sovereign_clouds() -> None:
    from azure.ai.ml._azure_environments import _environments
    from azure.identity import AzureAuthorityHosts

    sdk = {"public": "AzureCloud", "china": "AzureChinaCloud", "usgov": "AzureUSGovernment"}
    for name, cloud in KNOWN_CLOUDS.items():
        assert cloud.name == sdk[name]
        assert _environments[cloud.name]["resource_manager"] == cloud.resource_manager
        assert _environments[cloud.name]["storage_endpoint"] == cloud.storage_suffix
        assert _environments[cloud.name]["aml_resource_id"].rstrip("/") == cloud.ml_resource
    assert KNOWN_CLOUDS["china"].authority_host.rstrip("/") == "https://" + AzureAuthorityHosts.AZURE_CHINA
    assert KNOWN_CLOUDS["usgov"].authority_host.rstrip("/") == "https://" + AzureAuthorityHosts.AZURE_GOVERNMENT


DOCUMENT = {
    "name": "Contoso",
    "portal": "https://portal.azure.contoso.example/",
    "resourceManager": "https://arm.contoso.example/",
    "authentication": {"loginEndpoint": "https://login.contoso.example/", "audiences": [], "tenant": "common"},
    # ARM writes the Key Vault suffix with a leading dot (".vault.azure.net"), the others without.
    "suffixes": {
        "storage": "core.contoso.example",
        "acrLoginServer": "azurecr.contoso.example",
        "keyVaultDns": ".vault.contoso.example",
    },
}


def test_a_custom_cloud_comes_from_its_metadata_document_served_over_http() -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps([{**DOCUMENT, "name": "Other", "resourceManager": "https://other/"}, DOCUMENT]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from diabetes_mlops.azure.clouds import _fetch

        cloud = _fetch(f"http://127.0.0.1:{server.server_address[1]}/metadata/endpoints")
    finally:
        server.shutdown()
    assert cloud.name in ("Contoso", "Other")  # no entry serves 127.0.0.1: the first is taken
    chosen = cloud_from_metadata([{**DOCUMENT, "name": "Other"}, DOCUMENT], "https://arm.contoso.example/metadata")
    assert chosen.arm_client_kwargs()["base_url"] == "https://arm.contoso.example"
    assert chosen.credential_kwargs() == {
        "authority": "https://login.contoso.example/",
        "disable_instance_discovery": True,
    }
    assert chosen.acr_login_server("acr1") == "acr1.azurecr.contoso.example"
    assert chosen.key_vault_url("kv1") == "https://kv1.vault.contoso.example"
    assert chosen.ml_resource == "https://ml.azure.contoso.example"
    kwargs = chosen.ml_client_kwargs()
    assert kwargs["cloud"] == "Other" and kwargs["cloud_metadata"]["storage_endpoint"] == "core.contoso.example"


@pytest.mark.parametrize("value", ["azure", "http://arm.example/metadata", "https://", ""])
def test_a_bad_cloud_setting_names_the_setting(value: str) -> None:
    with pytest.raises(ConfigError, match="azure_cloud"):
        load_settings(azure_cloud=value) if value else resolve(value)


def test_a_document_without_the_endpoints_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="not an ARM metadata document"):
        cloud_from_metadata({"name": "x"}, "https://arm.example/metadata/endpoints")


def test_azure_mls_own_libraries_are_told_the_cloud_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", {})  # this test's own environment, gone after it
    export_to_azureml("china")
    assert os.environ == {"AZUREML_CURRENT_CLOUD": "AzureChinaCloud"}
    os.environ.clear()
    monkeypatch.setattr(clouds, "_fetch", lambda url: cloud_from_metadata(DOCUMENT, url))
    export_to_azureml("https://arm.contoso.example/metadata/endpoints?api-version=2022-09-01")
    # azureml-mlflow parses the document's list form, which ARM serves at this version
    list_form = "https://arm.contoso.example/metadata/endpoints?api-version=2019-05-01"
    assert os.environ == {"AZUREML_CURRENT_CLOUD": "Contoso", "ARM_CLOUD_METADATA_URL": list_form}
    export_to_azureml("public")  # the setting names the cloud, whatever a process named before
    assert os.environ["AZUREML_CURRENT_CLOUD"] == "AzureCloud"
