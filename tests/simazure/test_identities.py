"""Managed identities on the simulated Azure: a container group's container gets tokens only for the identities
of the group (IMDS), a pod only through workload identity (its service account's federated credential), and
the scoring logs reach Blob Storage through them; without an identity they cannot."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import WorkloadIdentityCredential
from azure.storage.blob import ContainerClient

from diabetes_mlops.config import Settings
from diabetes_mlops.deploy.smoke import smoke_test
from diabetes_mlops.deploy.targets.azure import AzureTarget
from diabetes_mlops.deploy.targets.base import Published
from tests.simazure.entra import EXCHANGE_AUDIENCE, sign
from tests.simazure.service import SimAzure
from tests.simazure.test_containers import published  # noqa: F401 - the fixture

STORAGE = "https://storage.azure.com"
ARRIVAL_SECONDS = 60


def logging_settings(simazure: SimAzure, settings: Settings, container: str, **azure: object) -> Settings:
    """The settings with scoring logs going to ``container`` of the simulated account, a batch a second."""
    changed = dataclasses.replace(
        settings.azure, storage_account_url=simazure.blob_url, storage_container=container, **azure
    )
    return dataclasses.replace(settings, azure=changed, scoring_log_upload_interval=1.0)


def logged(simazure: SimAzure, container: str, wait: float) -> list[dict[str, object]]:
    """The records in ``container`` once any arrive (or none after ``wait`` seconds)."""
    client = ContainerClient.from_connection_string(
        simazure.azurite.connection_string, container, connection_verify=str(simazure.ca.ca_file)
    )
    deadline = time.monotonic() + wait
    while True:
        records = (
            [
                json.loads(line)
                for b in client.list_blobs()
                for line in client.download_blob(b.name).readall().splitlines()
            ]
            if client.exists()
            else []
        )
        if records or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def storage_tokens_of(simazure: SimAzure, client_id: str) -> int:
    return sum(1 for c in simazure.entra.issued if c["appid"] == client_id and c["aud"] == STORAGE)


def test_a_container_group_writes_its_logs_to_blob_as_the_groups_identity(
    simazure: SimAzure,
    azure_settings: Settings,
    published: Published,  # noqa: F811
) -> None:
    settings = logging_settings(simazure, azure_settings, "logs-aci", aci_dns_label="qa-identity")
    client_id = simazure.scoring_identity["properties"]["clientId"]
    before = storage_tokens_of(simazure, client_id)
    target = AzureTarget(settings)
    endpoint = target.deploy("qa", published)  # pulls with the identity too: no admin password
    assert smoke_test(endpoint.url, target.scoring_key("qa"), published.version, timeout=120).ok
    records = logged(simazure, "logs-aci", ARRIVAL_SECONDS)
    assert records and all(r["model_version"] == published.version for r in records)
    assert storage_tokens_of(simazure, client_id) > before  # through IMDS, for the group's identity


def test_a_container_group_without_an_identity_gets_no_token_and_keeps_its_logs(
    simazure: SimAzure,
    azure_settings: Settings,
    published: Published,  # noqa: F811
) -> None:
    from diabetes_mlops.azure.clients import container_instance_client
    from diabetes_mlops.deploy.aci import deploy_aci
    from tests.simazure.test_containers import pull_credential

    settings = logging_settings(
        simazure, azure_settings, "logs-none", aci_identity=None, aci_name="qa-none", aci_dns_label="qa-none"
    )
    client = container_instance_client(settings)
    endpoint = deploy_aci(settings, client, published, pull_credential(simazure, settings))
    assert smoke_test(endpoint.url, settings.scoring_key, published.version, timeout=120).ok
    assert logged(simazure, "logs-none", 10) == []
    container = simazure.container_groups.running["qa-none"]
    log = (container.root / "container.log").read_text()
    assert "ManagedIdentityCredential" in log or "DefaultAzureCredential failed" in log, log[-2000:]
    client.container_groups.begin_delete(settings.azure.resource_group, "qa-none").result()


def test_imds_serves_only_the_identities_of_its_host(simazure: SimAzure) -> None:
    import requests

    stranger = simazure.entra.add_principal(secret=False)
    host = simazure.entra.assign_host([stranger])
    url = f"{simazure.base_url}{host}/metadata/identity/oauth2/token"
    params = {"api-version": "2018-02-01", "resource": STORAGE}
    other = simazure.scoring_identity["properties"]["clientId"]
    verify = str(simazure.ca.ca_file)
    refused = requests.get(url, params={**params, "client_id": other}, headers={"Metadata": "true"}, verify=verify)
    assert refused.status_code == 400 and refused.json()["error_description"] == "Identity not found"
    no_header = requests.get(url, params=params, verify=verify)
    assert no_header.status_code == 400 and "metadata header" in no_header.json()["error_description"]
    granted = requests.get(url, params=params, headers={"Metadata": "true"}, verify=verify)
    assert granted.status_code == 200 and granted.json()["client_id"] == stranger.client_id
    simazure.entra.release_host(host)
    gone = requests.get(url, params=params, headers={"Metadata": "true"}, verify=verify)
    assert gone.status_code == 400


def test_a_pod_writes_its_logs_to_blob_through_workload_identity(
    simazure: SimAzure,
    azure_settings: Settings,
    published: Published,  # noqa: F811
) -> None:
    settings = logging_settings(simazure, azure_settings, "logs-aks")
    client_id = simazure.scoring_identity["properties"]["clientId"]
    before = storage_tokens_of(simazure, client_id)
    target = AzureTarget(settings)
    endpoint = target.deploy("production", published)
    assert smoke_test(endpoint.url, target.scoring_key("production"), published.version, timeout=120).ok
    assert logged(simazure, "logs-aks", ARRIVAL_SECONDS)
    assert storage_tokens_of(simazure, client_id) > before
    account = simazure.kube.objects["/api/v1/namespaces/diabetes/serviceaccounts/diabetes-scoring"]
    assert account["metadata"]["annotations"]["azure.workload.identity/client-id"] == client_id


def assertion(simazure: SimAzure, subject: str, issuer: str | None = None) -> str:
    now = int(time.time())
    claims = {"iss": issuer or simazure.kube.issuer, "sub": subject, "aud": [EXCHANGE_AUDIENCE], "exp": now + 600}
    return sign(simazure.entra.trust_issuer(issuer or simazure.kube.issuer), claims)


@pytest.mark.parametrize(
    ("subject", "issuer", "refusal"),
    [
        ("system:serviceaccount:diabetes:default", None, "AADSTS70021"),  # another account of the namespace
        ("system:serviceaccount:diabetes:diabetes-scoring", "https://oidc.elsewhere.test/", "AADSTS70021"),
    ],
)
def test_entra_exchanges_an_assertion_only_for_the_federated_issuer_and_subject(
    simazure: SimAzure, tmp_path: Path, subject: str, issuer: str | None, refusal: str, simazure_env: dict[str, str]
) -> None:
    token_file = tmp_path / "token"
    client_id = simazure.scoring_identity["properties"]["clientId"]

    def credential() -> WorkloadIdentityCredential:
        return WorkloadIdentityCredential(
            tenant_id=simazure.entra.tenant,
            client_id=client_id,
            token_file_path=str(token_file),
            authority=simazure.base_url,
            disable_instance_discovery=True,
        )

    token_file.write_text(assertion(simazure, subject, issuer))
    with pytest.raises(ClientAuthenticationError, match=refusal):
        credential().get_token(f"{STORAGE}/.default")
    token_file.write_text(assertion(simazure, "system:serviceaccount:diabetes:diabetes-scoring"))
    assert credential().get_token(f"{STORAGE}/.default").token
