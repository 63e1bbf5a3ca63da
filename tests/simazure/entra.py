"""Entra ID's slice: OIDC discovery, the client-credentials token endpoint (with a secret, or with a federated
assertion as AKS workload identity sends it), Azure ML compute's managed identity endpoint, and the IMDS endpoint
of hosts that carry managed identities (container groups).

Tokens are JWTs signed with a key only this process holds (HS256), with the claims services read: ``aud``
(the resource of the scope asked for), ``iss`` (``https://sts.windows.net/<tenant>/``, which Azurite accepts),
``tid``, ``oid``, ``appid``, ``nbf`` and ``exp``.

A host gets tokens only for the identities it was given: the compute cluster for its own (``MSI_ENDPOINT``),
a container group for those in its ``identity`` (IMDS), a pod for the identity whose federated credential
names its cluster's issuer and its service account (workload identity). Azure's IMDS sits at
``169.254.169.254`` on every host; here each host's is at its own path of the front, handed to the host as
``AZURE_POD_IDENTITY_AUTHORITY_HOST`` (the override azure-identity and MSAL read for IMDS).
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
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # what a federated assertion must be issued for
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Principal:
    """A service principal or managed identity (its roles are assignments: ``rbac.Authorization``).

    A managed identity has no secret; its ``federated`` credentials are the (issuer, subject) pairs whose
    assertions Entra exchanges for its tokens.
    """

    client_id: str
    secret: str | None
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    federated: dict[str, tuple[str, str]] = field(default_factory=dict)  # credential name -> (issuer, subject)


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


def sign(key: bytes, claims: dict[str, Any]) -> str:
    """A compact HS256 JWT of ``claims``."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(hmac.new(key, f'{head}.{body}'.encode(), hashlib.sha256).digest())}"


def verified(key: bytes, token: str) -> dict[str, Any] | None:
    """The claims of a JWT signed with ``key``; None when it is malformed or signed otherwise."""
    try:
        head, body, signature = token.split(".")
        claims = json.loads(_unb64(body))
        expected = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return claims if isinstance(claims, dict) and hmac.compare_digest(expected, _unb64(signature)) else None
    except ValueError:
        return None


def unverified(token: str) -> dict[str, Any]:
    """The claims of a JWT, read as a token exchange reads ``iss`` before it knows which key to check."""
    try:
        claims = json.loads(_unb64(token.split(".")[1]))
    except (ValueError, IndexError):
        return {}
    return claims if isinstance(claims, dict) else {}


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
        self.issuers: dict[str, bytes] = {}  # OIDC issuers Entra trusts (AKS clusters'), by URL: their keys
        self.hosts: dict[str, list[Principal]] = {}  # IMDS path key -> the identities assigned to that host
        self.compute_identity = self.add_principal(secret=False)  # the compute cluster's system-assigned identity

    def add_principal(self, secret: bool = True) -> Principal:
        """A service principal (with a secret), or a managed identity (``secret=False``); it holds no role."""
        principal = Principal(str(uuid.uuid4()), secrets.token_urlsafe(24) if secret else None)
        self.principals[principal.client_id] = principal
        return principal

    def trust_issuer(self, issuer: str) -> bytes:
        """Register an OIDC issuer (an AKS cluster's) and return its signing key (Entra reads it from the
        issuer's JWKS; here the two share it)."""
        return self.issuers.setdefault(issuer, secrets.token_bytes(32))

    def assign_host(self, identities: list[Principal]) -> str:
        """A host's IMDS endpoint serving ``identities`` only: the value of ``AZURE_POD_IDENTITY_AUTHORITY_HOST``
        (under ``base_url``, without it)."""
        key = secrets.token_hex(12)
        self.hosts[key] = identities
        return f"/imds/{key}"

    def release_host(self, path: str) -> None:
        self.hosts.pop(path.rsplit("/", 1)[-1], None)

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
        return sign(self._key, claims)

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
        claims = verified(self._key, authorization[len("Bearer ") :]) or {}
        principal = self.principals.get(str(claims.get("appid")))
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
        t.on("GET", r"/imds/(?P<key>[0-9a-f]+)/metadata/identity/oauth2/token", self._imds)

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
        if form.get("client_assertion_type") == JWT_BEARER:
            refused = self._federated_refusal(principal, form.get("client_assertion", ""))
            if refused:
                return 400, {"error": "invalid_client", "error_description": refused}
        elif principal.secret is None or not hmac.compare_digest(principal.secret, form.get("client_secret", "")):
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}
        resource = resource_of(form.get("scope", ""))
        return 200, {
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "ext_expires_in": TOKEN_SECONDS,
            "access_token": self.token(principal, resource),
        }

    def _federated_refusal(self, principal: Principal, assertion: str) -> str | None:
        """Why Entra refuses a federated assertion for ``principal`` (AADSTS's text); None when it takes it."""
        claims = unverified(assertion)
        key = self.issuers.get(str(claims.get("iss")))
        if key is None or verified(key, assertion) is None:
            return f"AADSTS50027: JWT token is invalid or malformed. Issuer '{claims.get('iss')}' is not trusted."
        if claims.get("exp", 0) < time.time():
            return "AADSTS700024: Client assertion is not within its valid time range."
        audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
        if (claims["iss"], claims.get("sub")) in principal.federated.values() and EXCHANGE_AUDIENCE in audiences:
            return None
        return (
            "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: "
            f"'{claims['iss']}'. Assertion Subject: '{claims.get('sub')}'. Assertion Audience: "
            f"'{','.join(map(str, audiences))}'."
        )

    def _imds(self, call: Call) -> tuple[int, Any]:
        """A host's IMDS token endpoint: tokens for the identities assigned to the host, chosen by client id."""
        identities = self.hosts.get(call.path.split("/")[2])
        headers = {k.lower(): v for k, v in call.headers.items()}
        if headers.get("metadata") != "true":
            return 400, {"error": "invalid_request", "error_description": "Required metadata header not specified"}
        client_id = call.query.get("client_id", [None])[0]
        chosen = [p for p in identities or [] if client_id in (None, p.client_id)]
        if not chosen:
            return 400, {"error": "invalid_request", "error_description": "Identity not found"}
        if len(chosen) > 1:
            return 400, {
                "error": "invalid_request",
                "error_description": "Multiple user assigned identities exist, please specify the clientId / "
                "resourceId of the identity in the token request",
            }
        resource = resource_of(call.query.get("resource", [""])[0])
        now = int(time.time())
        return 200, {
            "access_token": self.token(chosen[0], resource),
            "client_id": chosen[0].client_id,
            "expires_in": str(TOKEN_SECONDS),
            "expires_on": str(now + TOKEN_SECONDS),
            "ext_expires_in": str(TOKEN_SECONDS),
            "not_before": str(now),
            "resource": resource,
            "token_type": "Bearer",
        }

    def _msi(self, call: Call) -> tuple[int, Any]:
        """Azure ML compute's managed identity endpoint (``MSI_ENDPOINT``, header ``secret``)."""
        headers = {k.lower(): v for k, v in call.headers.items()}
        if headers.get("secret") != self.msi_secret:
            return 401, {"error": "unauthorized", "error_description": "missing or wrong secret header"}
        client_id = call.query.get("clientid", [None])[0]
        principal = self.compute_identity
        if client_id not in (None, principal.client_id):  # the cluster carries its own identity only
            return 400, {"error": "invalid_request", "error_description": "Identity not found"}
        resource = resource_of(call.query.get("resource", [""])[0])
        return 200, {
            "access_token": self.token(principal, resource),
            "expires_on": int(time.time()) + TOKEN_SECONDS,
            "resource": resource,
            "token_type": "Bearer",
        }
