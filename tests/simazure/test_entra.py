"""Entra ID on the simulated Azure, through azure-identity as the kit and Jenkins' binding use it."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from diabetes_mlops.azure.clients import default_credential
from diabetes_mlops.config import Settings
from tests.simazure.entra import _unb64
from tests.simazure.service import SimAzure


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
