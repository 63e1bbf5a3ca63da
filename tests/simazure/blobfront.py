"""Blob Storage's authorization in front of Azurite: a request with an Entra token passes only when the token is
for Storage and a role assignment of its principal permits the request's data action on the container (else
Storage's 403 ``AuthorizationPermissionMismatch``); shared-key and SAS requests pass, as Azurite checks those.

Azurite (``--oauth basic``) reads a token's audience and expiry but holds no role assignments; this front does
what the account's RBAC does, then hands the request to Azurite unchanged.
"""

from __future__ import annotations

import http.client
import ssl
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from tests.simazure.entra import TokenRefused
from tests.simazure.tls import serve_tls

if TYPE_CHECKING:
    from tests.simazure.entra import Entra
    from tests.simazure.rbac import Authorization

STORAGE_AUDIENCE = "https://storage.azure.com"
BLOB_ACTIONS = "Microsoft.Storage/storageAccounts/blobServices/containers"
HOP_BY_HOP = ("connection", "keep-alive", "transfer-encoding", "content-length")


def blob_action(method: str, path: str, query: str) -> tuple[str, str, bool]:
    """(action, container, is a data action) of a Blob request, as Storage's permission table has them."""
    container = path.lstrip("/").split("/", 1)[0]
    params = parse_qs(query)
    on_container = "/" not in path.lstrip("/") and params.get("restype") == ["container"]
    if on_container and method in ("PUT", "DELETE"):
        return f"{BLOB_ACTIONS}/{'write' if method == 'PUT' else 'delete'}", container, False
    if on_container and params.get("comp") != ["list"]:
        return f"{BLOB_ACTIONS}/read", container, False
    verb = {"GET": "read", "HEAD": "read", "PUT": "write", "DELETE": "delete"}.get(method, "write")
    return f"{BLOB_ACTIONS}/blobs/{verb}", container, True


def mismatch() -> bytes:
    when = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
    return (
        '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This '
        f"request is not authorized to perform this operation using this permission.\nRequestId:{uuid.uuid4()}\n"
        f"Time:{when}</Message></Error>"
    ).encode()


class BlobFront:
    """An HTTPS server forwarding to Azurite on ``azurite_port`` what the account's RBAC permits."""

    def __init__(
        self,
        entra: Entra,
        rbac: Authorization,
        account_id: str,
        tls: tuple[Path, Path],
        ca_file: Path,
        azurite_port: int,
    ) -> None:
        self.entra = entra
        self.rbac = rbac
        self.account_id = account_id
        self.azurite_port = azurite_port
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.denied: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        serve_tls(self.server, tls)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def refusal(self, method: str, target: str, authorization: str | None) -> tuple[int, bytes, str] | None:
        """Storage's answer to a bearer request its token or roles do not allow; None to pass it on."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        try:
            principal, _ = self.entra.check(authorization, (STORAGE_AUDIENCE,))
        except TokenRefused as refused:
            return 401, refused.message.encode(), "InvalidAuthenticationInfo"
        split = urlsplit(target)
        action, container, data = blob_action(method, split.path, split.query)
        scope = f"{self.account_id}/blobServices/default/containers/{container}"
        if self.rbac.permits(principal, action, scope, data=data):
            return None
        self.denied.append(f"{principal.client_id} {action} {scope}")
        return 403, mismatch(), "AuthorizationPermissionMismatch"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                refused = front.refusal(self.command, self.path, self.headers.get("Authorization"))
                if refused is not None:
                    status, text, code = refused
                    self.send_response(status)
                    self.send_header("x-ms-error-code", code)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                    return
                upstream = http.client.HTTPSConnection("127.0.0.1", front.azurite_port, context=front.context)
                try:
                    upstream.request(self.command, self.path, body=body or None, headers=dict(self.headers))
                    answer = upstream.getresponse()
                    content = answer.read()
                    self.send_response(answer.status)
                    for name, value in answer.getheaders():
                        if name.lower() not in HOP_BY_HOP:
                            self.send_header(name, value)
                    # A HEAD's length is the blob's, not the (empty) body's.
                    length_header = answer.getheader("Content-Length") if self.command == "HEAD" else None
                    self.send_header("Content-Length", length_header or str(len(content)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(content)
                finally:
                    upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _serve

            def log_message(self, *args: object) -> None:
                pass

        return Handler
