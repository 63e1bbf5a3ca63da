"""Local deployments on ports others hold: fail at once with the holder, start the new before stopping the old.

And they are found (and stopped) from any directory, through the per-user index of running deployments.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from diabetes_mlops.config import Settings, load_settings
from diabetes_mlops.deploy.local import ENVIRONMENTS, deploy, elsewhere, endpoints, undeploy
from diabetes_mlops.deploy.ports import PortInUse
from diabetes_mlops.deploy.release import release
from diabetes_mlops.deploy.smoke import smoke_test
from diabetes_mlops.deploy.state import DeploymentState
from tests.conftest import free_port
from tests.serving.conftest import register_model


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[tuple[Settings, Settings]]:
    """Two homes, as two directories would have, both wanting the same production port."""
    production = free_port()
    pair = tuple(
        load_settings(home=tmp_path / name, qa_port=free_port(), production_port=production) for name in ("a", "b")
    )
    yield pair  # type: ignore[misc]
    for settings in pair:
        for env in ENVIRONMENTS:
            undeploy(settings, env)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def cli(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The CLI in ``settings``' home with its ports, as a user in that directory runs it."""
    command = [sys.executable, "-m", "diabetes_mlops", "--home", str(settings.home), *args]
    ports = {
        "DIABETES_MLOPS_QA_PORT": str(settings.qa_port),
        "DIABETES_MLOPS_PRODUCTION_PORT": str(settings.production_port),
    }
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **ports})


def test_a_second_home_on_a_taken_port_fails_at_once(homes: tuple[Settings, Settings]) -> None:
    first, second = homes
    deployed = deploy(first, "production", first.model_name, register_model(first))
    version = register_model(second)
    started = time.monotonic()
    with pytest.raises(PortInUse) as raised:
        release(second, version)
    assert time.monotonic() - started < 5
    holder = f"port {first.production_port} is in use by diabetes-mlops home {first.home.resolve()} (production"
    assert str(raised.value).startswith(holder)
    assert f"diabetes-mlops --home {first.home.resolve()} undeploy production" in str(raised.value)
    # Nothing half-started: the second home's QA never ran, and the first deployment still answers.
    assert endpoints(second) == [] and [(d.env, d.home) for d in elsewhere(second)] == [
        ("production", str(first.home.resolve()))
    ]
    assert not answers(f"http://127.0.0.1:{second.qa_port}")
    assert smoke_test(deployed.url, expect_version=deployed.model_version).ok
    result = cli(second, "deploy", "--env", "production", "--model", str(version))
    assert result.returncode == 1 and result.stderr.splitlines() == [f"error: {raised.value}"]
    assert answers(deployed.url)


def test_another_program_on_the_port_is_named_as_such(homes: tuple[Settings, Settings], taken_port: int) -> None:
    settings = homes[0]
    with pytest.raises(PortInUse, match=f"^port {taken_port} is in use by another program$"):
        deploy(settings, "qa", settings.model_name, register_model(settings), port=taken_port)
    assert endpoints(settings) == [] and not DeploymentState(settings.home, "qa").path.exists()


def test_the_supervisor_reports_a_failed_bind_to_the_deployer(tmp_path: Path, taken_port: int) -> None:
    state = DeploymentState(tmp_path / "home", "qa")
    state.update(desired={"name": "diabetes", "version": 1, "generation": 7, "port": taken_port})
    command = [sys.executable, "-m", "diabetes_mlops.deploy.supervisor"]
    args = ["--home", str(tmp_path / "home"), "--env", "qa", "--port", str(taken_port)]
    exited = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)
    assert exited.returncode == 1 and "Traceback" not in exited.stderr
    recorded = state.read()
    assert recorded["error"] == {"generation": 7, "message": f"port {taken_port} is in use by another program"}
    assert "supervisor_pid" not in recorded


def test_moving_to_another_port_keeps_the_old_one_until_the_new_one_serves(
    homes: tuple[Settings, Settings], taken_port: int
) -> None:
    settings = homes[0]
    good, tampered = register_model(settings, 1.0), register_model(settings, 50.0)
    model = settings.registry_dir / settings.model_name / str(tampered) / "model.skops"
    model.write_bytes(model.read_bytes() + b"\0")
    old = deploy(settings, "qa", settings.model_name, good)
    with pytest.raises(PortInUse, match=f"port {taken_port} is in use"):
        deploy(settings, "qa", settings.model_name, good, port=taken_port)
    new_port = free_port()
    with pytest.raises(Exception, match="did not start"):
        deploy(settings, "qa", settings.model_name, tampered, port=new_port)
    assert smoke_test(old.url, expect_version=good).ok
    assert [(e.url, e.model_version) for e in endpoints(settings)] == [(old.url, good)]
    assert not answers(f"http://127.0.0.1:{new_port}")
    moved = deploy(settings, "qa", settings.model_name, good, port=new_port)
    assert moved.url == f"http://127.0.0.1:{new_port}" and smoke_test(moved.url, expect_version=good).ok
    assert not answers(old.url)
    assert [(e.url, e.model_version) for e in endpoints(settings)] == [(moved.url, good)]


def test_deployments_are_found_and_stopped_from_any_home(homes: tuple[Settings, Settings]) -> None:
    first, second = homes
    deployed = deploy(first, "production", first.model_name, register_model(first))
    listing = json.loads(cli(second, "--json", "endpoints").stdout)
    assert listing["endpoints"] == []
    listed = listing["other_homes"]
    assert [(e["env"], e["url"], e["home"], e["healthy"]) for e in listed] == [
        ("production", deployed.url, str(first.home.resolve()), True)
    ]
    text = cli(second, "endpoints").stdout
    assert str(first.home.resolve()) in text and deployed.url in text
    elsewhere = cli(second, "undeploy", "production")
    assert elsewhere.returncode == 0 and "nothing was running" in elsewhere.stdout
    assert f"diabetes-mlops --home {first.home.resolve()} undeploy production" in elsewhere.stdout
    assert answers(deployed.url)
    everything = cli(second, "undeploy", "--all")
    assert everything.returncode == 0 and f"production of {first.home.resolve()}: stopped" in everything.stdout
    assert not answers(deployed.url)
    assert json.loads(cli(second, "--json", "endpoints").stdout)["other_homes"] == []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_taken_port_is_one_error_line(tmp_path: Path, taken_port: int, workers: str) -> None:
    settings = load_settings(home=tmp_path / "home")
    register_model(settings)
    result = cli(settings, "serve", "--model", "1", "--port", str(taken_port), "--workers", workers)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: port {taken_port} is in use by another program"]


def test_workers_that_cannot_load_the_model_say_why_and_serve_nothing(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    result = cli(settings, "serve", "--model-dir", str(empty), "--port", str(free_port()), "--workers", "2")
    assert result.returncode == 1
    assert f"error: {empty} is not a model directory: no metadata.json" in result.stderr.splitlines()
    assert result.stderr.splitlines()[-1] == "error: a server worker exited (1) before it was ready"


def test_serve_says_where_it_serves_once_ready(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    register_model(settings)
    port = free_port()
    command = [sys.executable, "-m", "diabetes_mlops", "--home", str(settings.home), "serve", "--model", "1"]
    process = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith(f"serving diabetes:1 at http://127.0.0.1:{port}")
        assert answers(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(30)
