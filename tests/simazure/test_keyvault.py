"""Scoring keys in Key Vault on the simulated Azure: the vault refuses what Key Vault refuses, each environment
gets its own key at its first release, and ``azure rotate-key`` under a steady keep-alive client loses no request."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
from azure.storage.blob import ContainerClient

from diabetes_mlops.azure.clients import default_credential
from diabetes_mlops.azure.scoring_keys import secret_name
from diabetes_mlops.config import Settings
from diabetes_mlops.deploy.targets.azure import AzureTarget
from diabetes_mlops.deploy.targets.base import Published
from tests.conftest import CliResult
from tests.simazure.entra import Principal
from tests.simazure.service import TENANT, Scopes, SimAzure
from tests.simazure.test_containers import published  # noqa: F401 - the fixture

ROW = [59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]


def session(simazure: SimAzure) -> requests.Session:
    """A pooled keep-alive client on the cloud's network, trusting only the test CA."""
    client = requests.Session()
    client.trust_env = False
    client.proxies = {"http": simazure.gateway.url, "https": simazure.gateway.url}
    client.verify = str(simazure.ca.ca_file)
    return client


def signed_in(simazure: SimAzure, principal: Principal) -> ClientSecretCredential:
    return ClientSecretCredential(
        TENANT, principal.client_id, str(principal.secret), authority=f"{simazure.base_url}/",
        disable_instance_discovery=True,
    )  # fmt: skip


def reader(simazure: SimAzure, env: str) -> SecretClient:
    """A client application's view of the vault: a principal holding Key Vault Secrets User on one secret."""
    principal = simazure.entra.add_principal()
    simazure.rbac.assign(principal, "Key Vault Secrets User", f"{Scopes.vault}/secrets/{secret_name(env)}")
    return SecretClient(simazure.vault.url, signed_in(simazure, principal))


def test_the_vault_challenges_and_takes_only_tokens_for_key_vault_with_a_role(
    simazure: SimAzure, azure_settings: Settings
) -> None:
    url = f"{simazure.vault.url}/secrets/scoring-key-qa/?api-version=2026-04-01"  # the current version, as the SDK asks
    with session(simazure) as http:
        anonymous = http.get(url)
        arm = default_credential(azure_settings).get_token(f"{simazure.base_url}/.default").token
        wrong_audience = http.get(url, headers={"Authorization": f"Bearer {arm}"})
        stranger = signed_in(simazure, simazure.entra.add_principal())
        unassigned = stranger.get_token(f"{simazure.vault.audience}/.default").token
        no_role = http.get(url, headers={"Authorization": f"Bearer {unassigned}"})
    assert anonymous.status_code == 401
    challenge = anonymous.headers["WWW-Authenticate"]
    assert f'resource="{simazure.vault.audience}"' in challenge and f"/{TENANT}" in challenge
    assert wrong_audience.status_code == 401
    assert "AKV10022: Invalid audience" in wrong_audience.json()["error"]["message"]
    assert no_role.status_code == 403
    assert no_role.json()["error"]["innererror"]["code"] == "ForbiddenByRbac"
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in no_role.json()["error"]["message"]


def test_each_environment_gets_its_own_key_and_a_reader_sees_only_its_own(
    simazure: SimAzure, azure_settings: Settings
) -> None:
    target = AzureTarget(azure_settings)
    qa, production = target.scoring_key("qa"), target.scoring_key("production")
    assert qa and production and qa != production
    assert AzureTarget(azure_settings).scoring_key("qa") == qa  # made once, read after
    qa_reader = reader(simazure, "qa")
    assert qa_reader.get_secret(secret_name("qa")).value == qa
    for refused in (
        lambda: qa_reader.get_secret(secret_name("production")),
        lambda: qa_reader.set_secret(secret_name("qa"), "chosen-by-a-reader"),
    ):
        with pytest.raises(HttpResponseError) as caught:
            refused()
        assert caught.value.status_code == 403 and "ForbiddenByRbac" in str(caught.value)
    assert simazure.vault.current(secret_name("qa")) == qa


def test_a_rotation_under_a_steady_keep_alive_client_loses_no_request_and_the_old_key_is_refused_after(
    simazure: SimAzure,
    azure_settings: Settings,
    published: Published,  # noqa: F811 - the fixture
    cli: Callable[..., CliResult],
) -> None:
    target = AzureTarget(azure_settings)
    endpoint = target.deploy("production", published)
    old = target.scoring_key("production")
    vault = reader(simazure, "production")
    answers: Counter[tuple[int, str]] = Counter()
    stop = threading.Event()

    def client() -> None:
        """A client that reads its key from the vault every half second and scores all the time."""
        key, read_at = vault.get_secret(secret_name("production")).value, time.monotonic()
        with session(simazure) as http:
            while not stop.is_set():
                if time.monotonic() - read_at > 0.5:
                    key, read_at = vault.get_secret(secret_name("production")).value, time.monotonic()
                auth = {"Authorization": f"Bearer {key}"}
                sent = http.post(f"{endpoint.url}/score", json={"data": [ROW]}, headers=auth, timeout=30)
                answers[(sent.status_code, "old" if key == old else "new")] += 1

    loop = threading.Thread(target=client)
    loop.start()
    try:
        time.sleep(1)
        rotated = cli("--json", "azure", "rotate-key", "--env", "production", "--grace", "3", timeout=600)
    finally:
        stop.set()
        loop.join(timeout=60)
    assert rotated.returncode == 0, rotated.stderr
    served = json.loads(rotated.stdout)["serving"]
    new = simazure.vault.current(secret_name("production"))
    assert served["version"] == published.version and new and new != old
    assert set(answers) == {(200, "old"), (200, "new")}, answers  # every request scored, with either key
    assert answers[(200, "old")] > 5 and answers[(200, "new")] > 5, answers
    with session(simazure) as http:
        after = {
            which: http.post(f"{endpoint.url}/score", json={"data": [ROW]}, headers={"Authorization": f"Bearer {key}"})
            for which, key in (("old", old), ("new", new))
        }
    assert after["old"].status_code == 401 and after["new"].status_code == 200
    # No key in what the command printed, nor in the scoring logs the pods wrote to Blob.
    printed = rotated.stdout + rotated.stderr
    logs = ContainerClient.from_connection_string(
        simazure.azurite.connection_string, "scoring-logs", connection_verify=str(simazure.ca.ca_file)
    )
    blobs = b"".join(logs.download_blob(b.name).readall() for b in logs.list_blobs()) if logs.exists() else b""
    for value in simazure.vault.values():
        assert value not in printed and value.encode() not in blobs
    assert simazure.gateway.refused == []


def test_the_release_fails_at_once_without_the_vault_role(
    simazure: SimAzure,
    azure_settings: Settings,
    published: Published,  # noqa: F811 - the fixture
) -> None:
    from diabetes_mlops.azure.access import AccessMissing

    simazure.rbac.unassign(simazure.principal, "Key Vault Secrets Officer")
    try:
        with pytest.raises(AccessMissing, match="Key Vault Secrets Officer"):
            AzureTarget(azure_settings).deploy("qa", published)
    finally:
        simazure.rbac.assign(simazure.principal, "Key Vault Secrets Officer", Scopes.vault)
