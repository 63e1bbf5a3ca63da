"""The scoring bundle works without Docker: its requirements in a fresh venv, its CMD, the smoke test.

And its entry script runs under Azure ML's own inference server, ``azmlinfsrv``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from diabetes_mlops.config import load_settings
from diabetes_mlops.data import FEATURES
from diabetes_mlops.deploy.bundle import write_bundle
from diabetes_mlops.deploy.smoke import REFERENCE_PAYLOAD, smoke_test
from diabetes_mlops.registry.local import LocalRegistry
from tests.conftest import REPO, free_port
from tests.serving.conftest import register_model, wait_ready

AZMLINFSRV = REPO / ".tools" / "azmlinfsrv" / "bin" / "azmlinfsrv"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = load_settings(home=tmp_path_factory.mktemp("home"))
    version = register_model(settings)
    return write_bundle(
        LocalRegistry(settings.registry_dir), settings.model_name, version, tmp_path_factory.mktemp("b") / "bundle"
    )


def dockerfile_cmd(bundle: Path) -> list[str]:
    text = (bundle / "Dockerfile").read_text()
    return json.loads(re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1))


def test_bundle_has_what_an_image_needs(bundle: Path) -> None:
    dockerfile = (bundle / "Dockerfile").read_text()
    assert dockerfile.startswith("# syntax=docker/dockerfile:1\nFROM python:3.11-slim")
    assert "USER app" in dockerfile and "HEALTHCHECK" in dockerfile and "EXPOSE 8000" in dockerfile
    requirements = (bundle / "requirements.txt").read_text().split()
    assert all(re.fullmatch(r"[a-z0-9\-]+(\[standard\])?==[\w.]+", r) for r in requirements)
    assert any(r.startswith("scikit-learn==") for r in requirements)
    assert not any(r.startswith(("pandas", "matplotlib", "pandera", "azure")) for r in requirements)
    assert (bundle / "model" / "model.skops").is_file() and (bundle / "score.py").is_file()
    # The service in the image loads the stored affine map (no scikit-learn import at start-up).
    assert (bundle / "model" / "affine.json").is_file()
    assert json.loads((bundle / "bundle.json").read_text())["model"]["version"] == 1


def test_an_image_for_azure_carries_the_sdks_of_its_log_store_and_telemetry(bundle: Path, tmp_path: Path) -> None:
    """Without them a container given the Blob or Application Insights settings could not start."""
    settings = load_settings(home=tmp_path / "home")
    version = register_model(settings)
    registry = LocalRegistry(settings.registry_dir)
    azure = write_bundle(registry, settings.model_name, version, tmp_path / "azure", azure=True)
    pins = dict(line.split("==") for line in (azure / "requirements.txt").read_text().split())
    sdks = ("azure-identity", "azure-storage-blob", "azure-monitor-opentelemetry", "opentelemetry-instrumentation-asgi")
    for name in (*sdks, "scikit-learn"):
        assert pins[name], name
    assert set((bundle / "requirements.txt").read_text().split()) < set(
        (azure / "requirements.txt").read_text().split()
    )


@pytest.fixture(scope="module")
def fresh_venv(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with nothing but the bundle's pinned requirements."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-r", "requirements.txt"],
        cwd=bundle,
        check=True,
        timeout=600,
    )
    return venv


@pytest.fixture
def running(bundle: Path, fresh_venv: Path, tmp_path: Path) -> Iterator[str]:
    """The Dockerfile's CMD, run from the context directory with the venv's python, on a loopback port."""
    command = dockerfile_cmd(bundle)
    assert command[0] == "python"
    port = free_port()
    env = {
        "PATH": f"{fresh_venv / 'bin'}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "DIABETES_MLOPS_HOME": str(tmp_path / ".mlops"),
        "DIABETES_MLOPS_HOST": "127.0.0.1",
        "PORT": str(port),
    }
    process = subprocess.Popen([str(fresh_venv / "bin" / "python"), *command[1:]], cwd=bundle, env=env)
    # The smoke test fails at once on a loopback port nothing listens on yet: wait until the server answers.
    wait_ready(f"http://127.0.0.1:{port}", process, timeout=120)
    yield f"http://127.0.0.1:{port}"
    process.send_signal(signal.SIGTERM)
    process.wait(30)


def test_bundle_serves_from_a_fresh_venv_with_the_dockerfile_cmd(running: str, bundle: Path, fresh_venv: Path) -> None:
    result = smoke_test(running, expect_version=1, timeout=120)
    assert result.ok, result.reason
    assert result.checks == ["health", "ready", "score", "model version"]
    healthcheck = re.search(r'CMD (\[.*"diabetes_mlops\.deploy\.healthcheck"\])', (bundle / "Dockerfile").read_text())
    command = [str(fresh_venv / "bin" / "python"), *json.loads(healthcheck.group(1))[1:]]
    port = running.rsplit(":", 1)[1]
    alive = subprocess.run(command, cwd=bundle, env={"PORT": port}, timeout=30)
    dead = subprocess.run(command, cwd=bundle, env={"PORT": str(free_port())}, timeout=30)
    assert (alive.returncode, dead.returncode) == (0, 1)


@pytest.fixture
def azmlinfsrv(bundle: Path, tmp_path: Path) -> Iterator[str]:
    """Azure ML's inference server (its own venv, installed by scripts/test.sh) on the bundle's score.py."""
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AZUREML_MODEL_DIR": str(bundle / "model"),
        "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",
    }
    process = subprocess.Popen(
        [str(AZMLINFSRV), "--entry_script", "score.py", "--port", str(port)],
        cwd=bundle,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield f"http://127.0.0.1:{port}"
    process.send_signal(signal.SIGTERM)
    process.wait(30)


def wait_for_score(url: str, timeout: float = 120.0) -> httpx.Response:
    """azmlinfsrv has no /ready: poll /score with the reference payload until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.post(f"{url}/score", json=REFERENCE_PAYLOAD, timeout=10)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_azmlinfsrv_runs_the_entry_script(azmlinfsrv: str) -> None:
    reference = wait_for_score(azmlinfsrv)
    assert reference.status_code == 200 and reference.headers["x-ms-server-version"].startswith("azmlinfsrv/")
    assert len(reference.json()["result"]) == 2
    v2 = httpx.post(
        f"{azmlinfsrv}/score",
        json={"input_data": {"columns": list(FEATURES), "data": [[1] * 10]}},
    )
    assert v2.status_code == 200 and v2.json()["model"] == {"name": "diabetes", "version": 1}
    bad = httpx.post(f"{azmlinfsrv}/score", json={"data": [[1, 2, 3]]})
    assert bad.status_code == 400
    assert bad.json() == {"error": "row 0: expected 10 values, got 3"}


def test_the_bundle_pins_the_library_versions_the_model_was_trained_with(tmp_path: Path) -> None:
    from importlib.metadata import version

    from diabetes_mlops.data import load_builtin
    from diabetes_mlops.train import make_pipeline

    settings = load_settings(home=tmp_path / "home")
    frame = load_builtin()
    model = make_pipeline(1.0).fit(frame.loc[:, list(FEATURES)], frame["target"])
    trained_with = {"python": "3.11.7", "scikit-learn": "1.5.0", "numpy": "1.26.4", "skops": "0.10.0"}
    entry = LocalRegistry(settings.registry_dir).register("m", model, {"library_versions": trained_with})
    bundle = write_bundle(LocalRegistry(settings.registry_dir), "m", entry.version, tmp_path / "bundle")
    requirements = set((bundle / "requirements.txt").read_text().split())
    assert {"scikit-learn==1.5.0", "numpy==1.26.4", "skops==0.10.0"} <= requirements
    assert f"starlette=={version('starlette')}" in requirements  # not recorded at training: the agent's version
