"""QA on Azure Container Instances through azure-mgmt-containerinstance and a fake ARM."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from fakes import Call, FakeCredential, FakeTransport

from diabetes_mlops.config import load_settings, setting_values
from diabetes_mlops.deploy.aci import aci_endpoint, delete_aci, deploy_aci, registry_credential
from diabetes_mlops.deploy.targets import Published
from diabetes_mlops.errors import ConfigError

SUB = "00000000-0000-0000-0000-000000000002"
GROUPS = f"/subscriptions/{SUB}/resourceGroups/rg-qa/providers/Microsoft.ContainerInstance/containerGroups"
ACR = f"/subscriptions/{SUB}/resourceGroups/rg-qa/providers/Microsoft.ContainerRegistry/registries/acrmlops"
KEY = "qa-scoring-key-123"
V3 = Published("diabetes", 3, None, f"acrmlops.azurecr.io/diabetes@sha256:{'3' * 64}")
V4 = Published("diabetes", 4, None, f"acrmlops.azurecr.io/diabetes@sha256:{'4' * 64}")


class FakeAci:
    """Container groups as ARM keeps them: created by an async PUT, deleted by an async DELETE."""

    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.groups: dict[str, dict[str, Any]] = {}
        t = self.transport
        t.on("GET", rf"{GROUPS}/(?P<n>[^/]+)", self._get)
        t.on("PUT", rf"{GROUPS}/(?P<n>[^/]+)", self._put)
        t.on("DELETE", rf"{GROUPS}/(?P<n>[^/]+)", self._delete)
        t.on("GET", r"/fake-operations/.+", lambda c: (200, {"status": "Succeeded"}))
        t.on(
            "POST",
            rf"{ACR}/listCredentials",
            (
                200,
                {
                    "username": "acrmlops",
                    "passwords": [
                        {"name": "password", "value": "admin-password-1"},
                        {"name": "password2", "value": "p2"},
                    ],
                },
            ),
        )

    def _get(self, call: Call) -> tuple[int, Any]:
        name = call.path.rsplit("/", 1)[1]
        if name not in self.groups:
            return 404, {"error": {"code": "ResourceNotFound", "message": f"group {name} not found"}}
        return 200, copy.deepcopy(self.groups[name])

    def _put(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        name = call.path.rsplit("/", 1)[1]
        body = copy.deepcopy(call.body)
        props = body["properties"]
        for container in props["containers"]:  # ACI never returns secure values
            for env in container["properties"].get("environmentVariables", []):
                env.pop("secureValue", None)
        for cred in props.get("imageRegistryCredentials", []):
            cred.pop("password", None)
        props["provisioningState"] = "Succeeded"
        label = props["ipAddress"]["dnsNameLabel"]
        props["ipAddress"].update({"ip": "20.1.2.3", "fqdn": f"{label}.westeurope.azurecontainer.io"})
        body.update({"id": f"{GROUPS}/{name}", "name": name, "type": "Microsoft.ContainerInstance/containerGroups"})
        self.groups[name] = body
        accepted = copy.deepcopy(body)
        accepted["properties"]["provisioningState"] = "Creating"
        op = {"Azure-AsyncOperation": f"https://management.azure.com/fake-operations/create-{name}"}
        return 201, accepted, op

    def _delete(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        name = call.path.rsplit("/", 1)[1]
        self.groups.pop(name, None)
        return 202, b"", {"Location": f"https://management.azure.com/fake-operations/delete-{name}"}


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(
        home=tmp_path,
        azure_subscription_id=SUB,
        azure_resource_group="rg-qa",
        azure_location="westeurope",
        azure_acr_name="acrmlops",
        azure_aci_cpu=2.0,
        azure_aci_memory_gb=3.5,
        scoring_key=KEY,
    )


@pytest.fixture
def aci() -> FakeAci:
    return FakeAci()


@pytest.fixture
def clients(aci: FakeAci, settings):
    from diabetes_mlops.azure.clients import container_instance_client, container_registry_client

    cred = FakeCredential()
    return (
        container_instance_client(settings, cred, transport=aci.transport),
        container_registry_client(settings, cred, transport=aci.transport),
    )


def test_deploy_creates_the_group_by_digest_waits_and_reads_the_fqdn(settings, aci, clients) -> None:
    client, registry = clients
    result = deploy_aci(settings, client, V3, registry_credential(settings, registry), polling_interval=0)

    label = result.url.removeprefix("http://").split(".")[0]
    assert label.startswith("diabetes-qa-") and len(label) == len("diabetes-qa-") + 8
    assert result.url == f"http://{label}.westeurope.azurecontainer.io:8000"
    assert (result.env, result.target, result.name, result.version, result.image) == (
        "qa",
        "azure",
        "diabetes",
        3,
        V3.image,
    )
    (put,) = aci.transport.find("PUT", rf"{GROUPS}/diabetes-qa")
    assert put.api_version == "2023-05-01"
    props = put.body["properties"]
    assert put.body["location"] == "westeurope"
    assert props["osType"] == "Linux" and props["restartPolicy"] == "Always"
    assert props["ipAddress"] == {
        "ports": [{"protocol": "TCP", "port": 8000}],
        "type": "Public",
        "dnsNameLabel": label,
        "autoGeneratedDomainNameLabelScope": "Unsecure",
    }
    assert props["imageRegistryCredentials"] == [
        {"server": "acrmlops.azurecr.io", "username": "acrmlops", "password": "admin-password-1"}
    ]
    (container,) = props["containers"]
    spec = container["properties"]
    assert spec["image"] == V3.image
    assert spec["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert spec["resources"] == {"requests": {"memoryInGB": 3.5, "cpu": 2.0}}
    assert spec["environmentVariables"] == [
        {"name": "PORT", "value": "8000"},
        {"name": "DIABETES_MLOPS_SCORING_KEY", "secureValue": KEY},
    ]
    assert spec["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8000, "scheme": "http"}
    assert spec["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8000, "scheme": "http"}
    assert put.body["tags"] == {"managed-by": "diabetes-mlops", "model": "diabetes:3"}
    (listing,) = aci.transport.find("POST", rf"{ACR}/listCredentials")
    assert listing.api_version == "2025-11-01"  # azure-mgmt-containerregistry 15.0
    assert aci.transport.unmatched == []


def test_a_new_image_updates_the_group_in_place_a_new_size_replaces_it_and_delete_removes_it(
    settings, aci, clients
) -> None:
    client, registry = clients
    assert aci_endpoint(settings, client) is None
    cred = registry_credential(settings, registry)
    deploy_aci(settings, client, V3, cred, polling_interval=0)
    deploy_aci(settings, client, V4, cred, polling_interval=0)
    methods = [c.method for c in aci.transport.calls if c.path.endswith("/containerGroups/diabetes-qa")]
    assert methods.count("DELETE") == 0 and methods.count("PUT") == 2  # ACI updates an image in place
    bigger = dataclasses.replace(settings, azure=dataclasses.replace(settings.azure, aci_cpu=4.0))
    deploy_aci(bigger, client, V4, cred, polling_interval=0)
    methods = [c.method for c in aci.transport.calls if c.path.endswith("/containerGroups/diabetes-qa")]
    assert methods.count("DELETE") == 1 and methods.count("PUT") == 3  # a new CPU size only by a new group
    assert methods.index("DELETE") < len(methods) - 1 - methods[::-1].index("PUT")
    image = aci.groups["diabetes-qa"]["properties"]["containers"][0]["properties"]["image"]
    assert image == V4.image
    found = aci_endpoint(settings, client)
    assert found is not None and (found.version, found.image) == (4, V4.image)

    assert delete_aci(settings, client, polling_interval=0) is True
    assert "diabetes-qa" not in aci.groups
    assert delete_aci(settings, client, polling_interval=0) is False


def test_pull_with_a_managed_identity(settings, aci, clients) -> None:
    client, _ = clients
    identity = (
        f"/subscriptions/{SUB}/resourceGroups/rg-qa/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id"
    )
    with_identity = load_settings(**{**setting_values(settings), "azure_aci_identity": identity})
    cred = registry_credential(with_identity)
    deploy_aci(with_identity, client, V3, cred, polling_interval=0)
    (put,) = aci.transport.find("PUT", rf"{GROUPS}/diabetes-qa")
    assert put.body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}
    pull = put.body["properties"]["imageRegistryCredentials"]
    assert pull == [{"server": "acrmlops.azurecr.io", "identity": identity}]
    assert aci.transport.find("POST", rf"{ACR}/listCredentials") == []


def test_missing_settings_name_the_environment_variable(tmp_path: Path) -> None:
    bare = load_settings(home=tmp_path, azure_acr_name="acrmlops")
    with pytest.raises(ConfigError, match="DIABETES_MLOPS_AZURE_ACI_IDENTITY"):
        registry_credential(bare)
    from diabetes_mlops.deploy.aci import container_group

    cred = registry_credential(load_settings(home=tmp_path, azure_acr_name="a", azure_aci_identity="/id"))
    with pytest.raises(ConfigError, match=r"'scoring_key'.*DIABETES_MLOPS_SCORING_KEY"):
        container_group(bare, V3, cred)
    keyed = load_settings(home=tmp_path, scoring_key="k")
    with pytest.raises(ConfigError, match=r"'azure_location'.*DIABETES_MLOPS_AZURE_LOCATION"):
        container_group(keyed, V3, cred)


def test_the_qa_container_logs_to_blob_and_reports_to_app_insights(settings, aci, clients) -> None:
    client, registry = clients
    blob = "DefaultEndpointsProtocol=https;AccountName=logs;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net"
    wiring = {
        "azure_storage_connection_string": blob,
        "azure_appinsights_connection_string": "InstrumentationKey=ik-2",
        "azure_identity_client_id": "cid-7",
    }
    wired = load_settings(**{**setting_values(settings), **wiring})
    deploy_aci(wired, client, V3, registry_credential(wired, registry), polling_interval=0)
    (put,) = aci.transport.find("PUT", rf"{GROUPS}/diabetes-qa")
    env = put.body["properties"]["containers"][0]["properties"]["environmentVariables"]
    by_name = {e["name"]: e for e in env}
    assert by_name["DIABETES_MLOPS_AZURE_STORAGE_CONNECTION_STRING"]["secureValue"].startswith("DefaultEndpoints")
    assert by_name["APPLICATIONINSIGHTS_CONNECTION_STRING"] == {
        "name": "APPLICATIONINSIGHTS_CONNECTION_STRING", "secureValue": "InstrumentationKey=ik-2"}  # fmt: skip
    assert by_name["DIABETES_MLOPS_AZURE_STORAGE_CONTAINER"]["value"] == "scoring-logs"
    assert by_name["AZURE_CLIENT_ID"]["value"] == "cid-7"
    stored = aci.groups["diabetes-qa"]["properties"]["containers"][0]["properties"]["environmentVariables"]
    assert "c2VjcmV0" not in str(stored) and "ik-2" not in str(stored)  # ACI never returns secure values
