"""A real Azurite blob service on a free loopback port, started and stopped by the tests."""

from __future__ import annotations

import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
# The well-known development account of Azurite and the storage emulator; not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Azurite:
    """One azurite-blob process; ``persistent`` keeps its blobs on disk across a stop and a start."""

    def __init__(self, location: Path, persistent: bool = False, tls: tuple[Path, Path] | None = None) -> None:
        if not AZURITE.exists():
            raise RuntimeError(f"{AZURITE} is missing: run scripts/test.sh (npm install --prefix .tools azurite)")
        self.location = location
        self.persistent = persistent
        self.tls = tls  # (certificate chain, key): HTTPS, and OAuth bearer tokens accepted
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        scheme = "https" if self.tls else "http"
        return (
            f"DefaultEndpointsProtocol={scheme};AccountName=devstoreaccount1;"
            f"AccountKey={ACCOUNT_KEY};BlobEndpoint={scheme}://127.0.0.1:{self.port}/devstoreaccount1;"
        )

    def start(self) -> None:
        args = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(self.port)]
        args += ["--skipApiVersionCheck", "--disableTelemetry", "--silent"]
        if self.tls:
            args += ["--cert", str(self.tls[0]), "--key", str(self.tls[1]), "--oauth", "basic"]
        # Azurite refuses --location together with --inMemoryPersistence; the working directory keeps
        # whatever small files it still writes out of the repository.
        args += ["--location", str(self.location)] if self.persistent else ["--inMemoryPersistence"]
        self.location.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(args, cwd=self.location, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"azurite exited with {self.process.returncode}") from None
                time.sleep(0.1)
        raise RuntimeError("azurite did not start listening within 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


def signed_url(base_url: str, container: str, blob: str, write: bool = False) -> str:
    """A one-hour SAS URL of ``blob`` on Azurite's account, readable (and writable with ``write``), as ARM hands out."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    permission = BlobSasPermissions(read=True, create=write, write=write)
    expiry = datetime.now(UTC) + timedelta(hours=1)
    sas = generate_blob_sas(ACCOUNT, container, blob, account_key=ACCOUNT_KEY, permission=permission, expiry=expiry)
    return f"{base_url}/{container}/{quote(blob)}?{sas}"
