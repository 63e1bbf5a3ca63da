"""A test certificate authority and one server certificate for every name the simulated Azure answers."""

from __future__ import annotations

import socketserver
import ssl
from pathlib import Path

import trustme


class TestCA:
    """The CA file clients trust (``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``) and PEM files for each server."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._ca = trustme.CA(organization_name="simazure test CA")
        self.ca_file = directory / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))

    def server_files(self, label: str, *names: str) -> tuple[Path, Path]:
        """Certificate chain and key files for a server answering ``names`` (host names or IP addresses)."""
        cert = self._ca.issue_cert(*names)
        chain, key = self.directory / f"{label}.pem", self.directory / f"{label}.key"
        chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(key))
        return chain, key


def serve_tls(server: socketserver.TCPServer, files: tuple[Path, Path]) -> None:
    """Make ``server`` speak HTTPS with the certificate chain and key in ``files``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*files)
    server.socket = context.wrap_socket(server.socket, server_side=True)
