"""Entra ID on the simulated Azure, through azure-identity as the kit and Jenkins' binding use it."""

from __future__ import annotations

import json

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from diabetes_mlops.azure.clients import default_credential
from diabetes_mlops.config import Settings
from tests.simazure.entra import _unb64
from tests.simazure.service import ACR_NAME, AKS_NAMESPACE, RG, SUB, WS, SimAzure


def claims(token: str) -> dict[str, object]:
    return json.loads(_unb64(token.split(".")[1]))


def test_client_secret_credential_gets_a_token_for_the_scope_asked(simazure: SimAzure, simazure_env) -> None:
    credential = ClientSecretCredential(
        simazure.entra.tenant,
        simazure.principal.client_id,
        simazure.principal.secret,
        authority=simazure.base_url,
        disable_instance_discovery=True,
    )
    token = credential.get_token(f"{simazure.base_url}/.default")
    got = claims(token.token)
    assert got["aud"] == simazure.base_url
    assert got["appid"] == simazure.principal.client_id
    assert got["tid"] == simazure.entra.tenant
    assert simazure.gateway.refused == []


def test_a_wrong_secret_is_refused(simazure: SimAzure, simazure_env) -> None:
    credential = ClientSecretCredential(
        simazure.entra.tenant,
        simazure.principal.client_id,
        "not-the-secret",
        authority=simazure.base_url,
        disable_instance_discovery=True,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential.get_token(f"{simazure.base_url}/.default")


def test_the_kits_default_credential_finds_the_cloud_by_setting_alone(
    simazure: SimAzure, azure_settings: Settings
) -> None:
    token = default_credential(azure_settings).get_token(f"{simazure.base_url}/.default")
    assert claims(token.token)["appid"] == simazure.principal.client_id
    assert simazure.gateway.refused == []  # no instance discovery at login.microsoftonline.com


def bearer(simazure: SimAzure, audience: str, lifetime: int = 3600) -> dict[str, str]:
    return {"Authorization": f"Bearer {simazure.entra.token(simazure.principal, audience, lifetime)}"}


def test_resource_manager_takes_only_its_own_audience_and_unexpired_tokens(simazure: SimAzure) -> None:
    """ARM's answers, as Azure gives them: a token for Azure ML, an expired one, none at all."""
    url = f"{simazure.base_url}/subscriptions/{SUB}/resourceGroups/{RG}?api-version=2022-09-01"
    ca = str(simazure.ca.ca_file)
    wrong = requests.get(url, headers=bearer(simazure, simazure.ml_audience), verify=ca, timeout=30)
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    assert f"wrong audience or resource '{simazure.ml_audience}'" in wrong.json()["error"]["message"]
    expired = requests.get(url, headers=bearer(simazure, simazure.base_url, lifetime=-120), verify=ca, timeout=30)
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "ExpiredAuthenticationToken"
    assert "is earlier than current UTC time" in expired.json()["error"]["message"]
    missing = requests.get(url, verify=ca, timeout=30)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "AuthenticationFailed"


def test_the_workspace_mlflow_api_needs_a_token_of_arm_or_azure_ml(simazure: SimAzure) -> None:
    workspace = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
    api = f"{simazure.base_url}/mlflow/v2.0{workspace}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    ca = str(simazure.ca.ca_file)
    assert requests.get(api, verify=ca, timeout=30).status_code == 401
    storage = requests.get(api, headers=bearer(simazure, "https://storage.azure.com"), verify=ca, timeout=30)
    assert storage.status_code == 401 and storage.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    for audience in (simazure.base_url, simazure.ml_audience):
        assert requests.get(api, headers=bearer(simazure, audience), verify=ca, timeout=60).status_code == 200


def test_the_aks_api_server_takes_only_tokens_for_the_aks_server_application(simazure: SimAzure) -> None:
    """Over TLS with the cluster's CA (from the kubeconfig): a token for ARM is a 401, one for the server app
    that kubelogin's --server-id names is let in (to the namespace its role is assigned in)."""
    import yaml
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    kubeconfig = yaml.safe_load(simazure.kube.kubeconfig())
    [user] = kubeconfig["users"]
    args = user["user"]["exec"]["args"]
    server_app = args[args.index("--server-id") + 1]
    for audience, allowed in ((simazure.base_url, False), (server_app, True)):
        user["user"] = {"token": simazure.entra.token(simazure.principal, audience)}
        core = client.CoreV1Api(config.new_client_from_config_dict(kubeconfig))
        with pytest.raises(ApiException) as answered:
            core.read_namespaced_service_account("absent", AKS_NAMESPACE)
        assert answered.value.status == (404 if allowed else 401)  # let in, the account is not there


def test_acr_exchanges_only_an_arm_token_for_a_refresh_token(simazure: SimAzure) -> None:
    server = simazure.registries.login_server(ACR_NAME)
    url = f"{simazure.base_url}/oauth2/exchange"
    ca = str(simazure.ca.ca_file)
    for audience, status in ((simazure.ml_audience, 401), (f"{simazure.base_url}/", 200)):
        token = simazure.entra.token(simazure.principal, audience)
        form = {"grant_type": "access_token", "service": server, "access_token": token}
        assert requests.post(url, data=form, verify=ca, timeout=30).status_code == status
