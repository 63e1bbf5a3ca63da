"""Key Vault's secrets data plane, with RBAC authorization (the permission model docs/azure.md sets up).

As the service does: a request without a token is answered 401 with the ``WWW-Authenticate`` challenge naming
the tenant's authority and the vault audience (the SDK's challenge policy asks for a token for that resource
and sends the request again); a token of another audience is refused (``AKV10022``); a caller whose role
assignments do not permit the secret's data action at ``<vault>/secrets/<name>`` gets 403 ``Forbidden`` with
inner code ``ForbiddenByRbac``. Secrets keep every version; the newest enabled one is the current value.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from tests.simazure.entra import TokenRefused
from tests.simazure.tls import serve_tls

if TYPE_CHECKING:
    from tests.simazure.entra import Entra, Principal
    from tests.simazure.openapi import Specs
    from tests.simazure.rbac import Authorization

API_VERSION = "2026-04-01"  # azure-keyvault-secrets 4.12's, the version of the vendored spec
SECRET_ACTIONS = "Microsoft.KeyVault/vaults/secrets"


@dataclass
class _Version:
    value: str
    version: str
    created: int
    enabled: bool = True
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str, inner: str | None = None) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"code": code, "message": message}
    if inner:
        body["innererror"] = {"code": inner}
    return status, {"error": body}


class KeyVault:
    """One vault (``https://<name>.<suffix>``) on an HTTPS server of its own, reached through the gateway."""

    def __init__(
        self,
        name: str,
        vault_id: str,
        suffix: str,
        entra: Entra,
        rbac: Authorization,
        authority: str,
        tls: tuple[Path, Path],
        specs: Specs,
        problems: list[str],
    ) -> None:
        self.name = name
        self.vault_id = vault_id
        self.url = f"https://{name}.{suffix}"
        self.audience = f"https://{suffix}"
        self.entra = entra
        self.rbac = rbac
        self.authority = authority.rstrip("/")
        self.specs = specs
        self.problems = problems
        self.secrets: dict[str, list[_Version]] = {}
        self.denied: list[str] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        serve_tls(self.server, tls)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def current(self, name: str) -> str | None:
        """The value a reader of ``name`` gets now (for tests); None when there is none."""
        with self._lock:
            enabled = [v for v in self.secrets.get(name, []) if v.enabled]
        return enabled[-1].value if enabled else None

    def values(self) -> list[str]:
        """Every value of every version: what must never appear in a log, report or blob."""
        with self._lock:
            return [v.value for versions in self.secrets.values() for v in versions]

    # --- the protocol -------------------------------------------------------------------------------

    def _challenge(self) -> str:
        return f'Bearer authorization="{self.authority}/{self.entra.tenant}", resource="{self.audience}"'

    def answer(
        self, method: str, target: str, authorization: str | None, body: bytes
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        """Status, JSON body and extra headers of one request, as Key Vault answers it."""
        split = urlsplit(target)
        parts = [p for p in split.path.split("/") if p]
        version = parse_qs(split.query).get("api-version", [None])[0]
        if not authorization:
            status, error = _error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
            return status, error, {"WWW-Authenticate": self._challenge()}
        if version is None:
            return (*_error(400, "BadParameter", "The 'api-version' query parameter is missing."), {})
        try:
            principal, claims = self.entra.check(authorization, None)
        except TokenRefused as refused:
            return (*_error(401, "Unauthorized", f"AKV10032: {refused.message}"), {})
        if claims["aud"].rstrip("/") != self.audience:
            message = f"AKV10022: Invalid audience. Expected {self.audience}, found: {claims['aud']}."
            return (*_error(401, "Unauthorized", message), {"WWW-Authenticate": self._challenge()})
        if len(parts) < 2 or parts[0] != "secrets":
            return (*_error(400, "BadParameter", f"Unknown path {split.path}"), {})
        name, rest = parts[1], parts[2:]
        action = self._action(method, rest)
        if action is None:
            return (*_error(405, "MethodNotAllowed", f"{method} is not allowed on {split.path}"), {})
        scope = f"{self.vault_id}/secrets/{name}"
        if not self.rbac.permits(principal, f"{SECRET_ACTIONS}/{action}", scope, data=True):
            return self._forbidden(principal, f"{SECRET_ACTIONS}/{action}", scope)
        with self._lock:
            return self._serve(method, name, rest, body)

    @staticmethod
    def _action(method: str, rest: list[str]) -> str | None:
        if method == "PUT" and not rest:
            return "setSecret/action"
        if method == "GET" and rest == ["versions"]:
            return "readMetadata/action"
        if method == "GET" and len(rest) <= 1:
            return "getSecret/action"
        if method == "PATCH" and len(rest) == 1:
            return "update/action"
        return None

    def _forbidden(self, principal: Principal, action: str, scope: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.denied.append(f"{principal.client_id} {action} {scope}")
        message = (
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or "
            "role definitions were changed recently, please observe propagation time.\r\n"
            f"Caller: appid={principal.client_id};oid={principal.object_id}\r\nAction: '{action}'\r\n"
            f"Resource: '{scope.lower()}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\n"
            f"DecisionReason: null \r\nVault: {self.name};location=westeurope\r\n"
        )
        return (*_error(403, "Forbidden", message, "ForbiddenByRbac"), {})

    def _bundle(self, name: str, v: _Version, with_value: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": f"{self.url}/secrets/{name}/{v.version}",
            "attributes": {
                "enabled": v.enabled,
                "created": v.created,
                "updated": v.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": dict(v.tags),
        }
        if with_value:
            out["value"] = v.value
        if v.content_type:
            out["contentType"] = v.content_type
        return out

    def _not_found(self, name: str, version: str = "") -> tuple[int, dict[str, Any], dict[str, str]]:
        what = f"{name}/{version}" if version else name
        message = f"A secret with (name/id) {what} was not found in this key vault. If you recently deleted this "
        message += "secret you may be able to recover it using the correct recovery command."
        return (*_error(404, "SecretNotFound", message), {})

    def _serve(self, method: str, name: str, rest: list[str], raw: bytes) -> tuple[int, Any, dict[str, str]]:
        versions = self.secrets.get(name, [])
        if method == "PUT":
            body = json.loads(raw or b"{}")
            if not isinstance(body.get("value"), str):
                return (*_error(400, "BadParameter", "Property 'value' is required."), {})
            made = _Version(
                body["value"], secrets.token_hex(16), int(time.time()), bool((body.get("attributes") or {}).get(
                    "enabled", True)), body.get("contentType"), dict(body.get("tags") or {})
            )  # fmt: skip
            self.secrets.setdefault(name, []).append(made)
            return 200, self._bundle(name, made), {}
        if method == "GET" and rest == ["versions"]:
            if not versions:
                return self._not_found(name)
            items = [self._bundle(name, v, with_value=False) for v in versions]
            return 200, {"value": items}, {}
        wanted = rest[0] if rest else ""
        found = [v for v in versions if v.version == wanted] if wanted else [v for v in versions if v.enabled][-1:]
        if not found:
            return self._not_found(name, wanted)
        chosen = found[0]
        if method == "PATCH":
            body = json.loads(raw or b"{}")
            if "tags" in body:
                chosen.tags = dict(body["tags"] or {})
            if "contentType" in body:
                chosen.content_type = body["contentType"]
            chosen.enabled = bool((body.get("attributes") or {}).get("enabled", chosen.enabled))
            return 200, self._bundle(name, chosen, with_value=False), {}
        if not chosen.enabled:
            return (
                *_error(403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled"),
                {},
            )
        return 200, self._bundle(name, chosen), {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        vault = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, headers = vault.answer(self.command, self.path, self.headers.get("Authorization"), raw)
                content = json.dumps(body).encode() if body is not None else b""
                if self.headers.get("Authorization"):  # the challenge round trip is the SDK's, not an operation
                    vault.problems += vault.specs.check(self.command, self.path, raw, status, content)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("x-ms-keyvault-service-version", "1.9.0.0")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        return Handler
