"""Entra ID's slice: OIDC discovery, the client-credentials token endpoint, Azure ML's managed identity.

Tokens are JWTs signed with a key only this process holds (HS256), with the claims services read: ``aud``
(the resource of the scope asked for), ``iss`` (``https://sts.windows.net/<tenant>/``, which Azurite accepts),
``tid``, ``oid``, ``appid``, ``nbf`` and ``exp``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fakes import Call, FakeTransport

TOKEN_SECONDS = 3600


@dataclass
class Principal:
    """A service principal or managed identity and the Azure roles it holds (``Contributor``, ``Reader``)."""

    client_id: str
    secret: str
    roles: set[str] = field(default_factory=lambda: {"Contributor"})
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class TokenRefused(Exception):
    """A bearer token a service does not take: ARM's error code and message (always a 401)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def answer(self) -> tuple[int, dict[str, Any]]:
        return 401, {"error": {"code": self.code, "message": self.message}}


def _utc(seconds: float) -> str:
    return time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(seconds))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def resource_of(scope: str) -> str:
    """The audience a scope asks for: ``https://x/.default`` -> ``https://x``."""
    return scope.split()[0].removesuffix("/.default").removesuffix("/")


class Entra:
    """One tenant: principals by client id, tokens issued and checked."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.principals: dict[str, Principal] = {}
        self.msi_secret = secrets.token_hex(16)
        self._key = secrets.token_bytes(32)
        self.issued: list[dict[str, Any]] = []
        self.compute_identity = self.add_principal()  # the compute cluster's system-assigned identity

    def add_principal(self, roles: set[str] | None = None) -> Principal:
        principal = Principal(
            str(uuid.uuid4()), secrets.token_urlsafe(24), roles if roles is not None else {"Contributor"}
        )
        self.principals[principal.client_id] = principal
        return principal

    def token(self, principal: Principal, resource: str, lifetime: int = TOKEN_SECONDS) -> str:
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{self.tenant}/",
            "tid": self.tenant,
            "oid": principal.object_id,
            "appid": principal.client_id,
            "iat": now,
            "nbf": now - 60,
            "exp": now + lifetime,
        }
        self.issued.append(claims)
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        signature = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(signature)}"

    def check(self, authorization: str | None, audiences: tuple[str, ...] | None) -> tuple[Principal, dict[str, Any]]:
        """The principal and claims of a ``Bearer`` token valid for one of ``audiences`` (any, with None); else
        TokenRefused with ARM's code and message for what is wrong."""
        if not authorization:
            raise TokenRefused("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        if not authorization.startswith("Bearer "):
            raise TokenRefused(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            )
        claims: dict[str, Any] = {}
        try:
            head, body, signature = authorization[len("Bearer ") :].split(".")
            expected = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
            claims = json.loads(_unb64(body))
            valid = isinstance(claims, dict) and hmac.compare_digest(expected, _unb64(signature))
        except ValueError:
            valid = False
        principal = self.principals.get(str(claims.get("appid"))) if valid else None
        if principal is None:
            raise TokenRefused("InvalidAuthenticationToken", "The access token is invalid.")
        now = time.time()
        if claims["exp"] < now:
            raise TokenRefused(
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time '{_utc(claims['exp'])}' is earlier than current UTC time "
                f"'{_utc(now)}'.",
            )
        if audiences is not None and claims["aud"].rstrip("/") not in {a.rstrip("/") for a in audiences}:
            allowed = ",".join(f"'{a}'" for a in audiences)
            raise TokenRefused(
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{claims['aud']}'. It should "
                f"exactly match with one of the allowed audiences {allowed}.",
            )
        return principal, claims

    # --- routes -------------------------------------------------------------------------------------

    def install(self, transport: FakeTransport, base_url: str) -> None:
        t = transport
        t.on("GET", r"/(?P<t>[^/]+)/v2\.0/\.well-known/openid-configuration", lambda c: self._discovery(c, base_url))
        t.on("POST", r"/(?P<t>[^/]+)/oauth2/v2\.0/token", self._token)
        t.on("GET", r"/msi/token", self._msi)

    def _discovery(self, call: Call, base_url: str) -> tuple[int, Any]:
        tenant = call.path.strip("/").split("/")[0]
        if tenant not in (self.tenant, "organizations", "common"):
            return 400, {"error": "invalid_tenant", "error_description": f"AADSTS90002: Tenant '{tenant}' not found."}
        root = f"{base_url}/{tenant}"
        return 200, {
            "issuer": f"{root}/v2.0",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "tenant_region_scope": "EU",
        }

    def _token(self, call: Call) -> tuple[int, Any]:
        form = {k: v[0] for k, v in parse_qs(call.body if isinstance(call.body, str) else "").items()}
        if call.path.strip("/").split("/")[0] != self.tenant:
            return 400, {"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant not found."}
        principal = self.principals.get(form.get("client_id", ""))
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "only client_credentials here"}
        if principal is None:
            return 400, {"error": "unauthorized_client", "error_description": "AADSTS700016: Application not found."}
        if not hmac.compare_digest(principal.secret, form.get("client_secret", "")):
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}
        resource = resource_of(form.get("scope", ""))
        return 200, {
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "ext_expires_in": TOKEN_SECONDS,
            "access_token": self.token(principal, resource),
        }

    def _msi(self, call: Call) -> tuple[int, Any]:
        """Azure ML compute's managed identity endpoint (``MSI_ENDPOINT``, header ``secret``)."""
        headers = {k.lower(): v for k, v in call.headers.items()}
        if headers.get("secret") != self.msi_secret:
            return 401, {"error": "unauthorized", "error_description": "missing or wrong secret header"}
        client_id = call.query.get("clientid", [None])[0]
        principal = self.principals.get(client_id) if client_id else self.compute_identity
        if principal is None:
            return 400, {"error": "invalid_request", "error_description": "no such identity on this compute"}
        resource = resource_of(call.query.get("resource", [""])[0])
        return 200, {
            "access_token": self.token(principal, resource),
            "expires_on": int(time.time()) + TOKEN_SECONDS,
            "resource": resource,
            "token_type": "Bearer",
        }
