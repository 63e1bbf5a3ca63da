"""A registered model and a real scoring server on a free loopback port, started as a user starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from diabetes_mlops.config import Settings, load_settings
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.registry.local import LocalRegistry
from diabetes_mlops.train import make_pipeline
from tests.conftest import free_port


def register_model(settings: Settings, alpha: float = 1.0) -> int:
    frame = load_builtin()
    model = make_pipeline(alpha).fit(frame.loc[:, list(FEATURES)], frame["target"])
    return (
        LocalRegistry(settings.registry_dir).register(settings.model_name, model, {"params": {"alpha": alpha}}).version
    )


@dataclass
class Server:
    """A scoring server process, how to reach it, and the file its stderr goes to."""

    url: str
    process: subprocess.Popen[str]
    settings: Settings
    log: Path

    def stderr(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        """SIGTERM, as a supervisor or an orchestrator stops it, and wait for a clean exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


def wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 60.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text() if log else f"exit code {process.returncode}"
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not ready in {timeout} s")


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """Start ``diabetes-mlops serve`` on a registered model; every server is stopped at the end."""
    servers: list[Server] = []

    def start(env: dict[str, str] | None = None, home: Path | None = None, args: tuple[str, ...] = ()) -> Server:
        home = home or tmp_path_factory.mktemp("home")
        variables = {**os.environ, "DIABETES_MLOPS_HOME": str(home), **(env or {})}
        settings = load_settings(home=home)
        if not LocalRegistry(settings.registry_dir).list_versions(settings.model_name):
            register_model(settings)
        port = free_port()
        # A file, not a pipe nobody reads: a server that logs many tracebacks would block on a full pipe and
        # hang the tests instead of failing them.
        log = tmp_path_factory.mktemp("server") / "stderr.log"
        with open(log, "w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "diabetes_mlops", "serve", "--model", "latest", "--port", str(port), *args],
                env=variables,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
            )
        server = Server(f"http://127.0.0.1:{port}", process, load_settings(home=home), log)
        servers.append(server)
        wait_ready(server.url, process, log=log)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def server(start_server: Callable[..., Server]) -> Server:
    return start_server()
