"""Each environment's scoring key, kept in Key Vault (``azure_key_vault``): one secret per environment.

The secret ``scoring-key-<env>`` is created with a random value at the environment's first release and read by
every release after it, with the build's own identity (Key Vault Secrets Officer on the vault; a client that
only calls the service needs Key Vault Secrets User on its environment's secret). QA and production never
share a key. A value never leaves this module except to the deployment and the smoke test.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diabetes_mlops.azure.clients import cloud, require

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.keyvault.secrets import SecretClient

    from diabetes_mlops.config import Settings

SECRET_PREFIX = "scoring-key-"
KEY_BYTES = 32  # 256 bits, URL-safe: a bearer token no one guesses


@dataclass(frozen=True)
class ScoringKeys:
    """The key an environment's service takes, and during a rotation the one it replaces (accepted too)."""

    current: str = field(repr=False)
    previous: str | None = field(default=None, repr=False)
    version: str | None = None  # the secret version ``current`` is


def secret_name(env: str) -> str:
    return f"{SECRET_PREFIX}{env}"


def secret_client(settings: Settings, credential: TokenCredential, **client_kwargs: Any) -> SecretClient:
    """The vault's secrets client, in the configured cloud."""
    from azure.keyvault.secrets import SecretClient

    url = cloud(settings).key_vault_url(require(settings.azure, "key_vault"))
    return SecretClient(url, credential, **client_kwargs)


def new_key() -> str:
    """A fresh random key."""
    return secrets.token_urlsafe(KEY_BYTES)


def store_key(settings: Settings, env: str, value: str, credential: TokenCredential, **client_kwargs: Any) -> str:
    """Make ``value`` the environment's current key (a new version of its secret); the version."""
    client = secret_client(settings, credential, **client_kwargs)
    tags = {"managed-by": "diabetes-mlops", "environment": env}
    return str(client.set_secret(secret_name(env), value, content_type="text/plain", tags=tags).properties.version)


def scoring_keys(settings: Settings, env: str, credential: TokenCredential, **client_kwargs: Any) -> ScoringKeys:
    """The environment's key: the secret's current version, created with a random value the first time."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        found = secret_client(settings, credential, **client_kwargs).get_secret(secret_name(env))
    except ResourceNotFoundError:
        value = new_key()
        return ScoringKeys(value, version=store_key(settings, env, value, credential, **client_kwargs))
    return ScoringKeys(str(found.value), version=found.properties.version)
