"""Shared fixtures: a settings object and a CLI runner, both on a temporary home."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from diabetes_mlops.config import Settings, load_settings

if TYPE_CHECKING:
    from tests.appinsights import Ingestion
    from tests.simazure.service import SimAzure

REPO = Path(__file__).resolve().parent.parent
# A tracked training imports MLflow (seconds) and creates its store: the tests of tracking turn it on.
os.environ["DIABETES_MLOPS_TRACKING"] = "false"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# azure-ai-ml (MLClient) and the kit (azure/clouds.py) name the cloud to Azure ML's own libraries in these.
AZUREML_CLOUD_VARIABLES = ("AZUREML_CURRENT_CLOUD", "ARM_CLOUD_METADATA_URL")


@pytest.fixture(autouse=True)
def hermetic_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from the kit's defaults: settings the agent or the shell carries are not the test's."""
    for name in [n for n in os.environ if n.startswith("DIABETES_MLOPS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DIABETES_MLOPS_TRACKING", "false")  # as above; the tests of tracking turn it on


@pytest.fixture(autouse=True)
def azureml_cloud_variables() -> Iterator[None]:
    """Each test starts with no cloud named in this process's environment, and one named during it is gone
    after it (a later ``import mlflow`` with Azure ML's plugin would fetch a metadata URL that is gone); the
    shell's values come back. monkeypatch cannot do it: it undoes nothing for a variable that was not set."""
    saved = {name: os.environ.pop(name, None) for name in AZUREML_CLOUD_VARIABLES}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def runtime_dir(
    hermetic_settings: None, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test its own index of running local deployments: tests never see (or stop) the user's."""
    path = tmp_path_factory.mktemp("runtime")
    monkeypatch.setenv("DIABETES_MLOPS_RUNTIME_DIR", str(path))
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary home whose QA and production ports are free ones; local deployments stop at the end."""
    path = tmp_path / "home"
    monkeypatch.setenv("DIABETES_MLOPS_QA_PORT", str(free_port()))
    monkeypatch.setenv("DIABETES_MLOPS_PRODUCTION_PORT", str(free_port()))
    yield path
    from diabetes_mlops.deploy.local import ENVIRONMENTS, undeploy

    for env in ENVIRONMENTS:
        undeploy(load_settings(home=path), env)


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home=home)


CliResult = subprocess.CompletedProcess[str]


@pytest.fixture
def cli(home: Path) -> Callable[..., CliResult]:
    """Run ``python -m diabetes_mlops --home HOME ARGS...`` in a real subprocess."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
        return subprocess.run(
            [sys.executable, "-m", "diabetes_mlops", "--home", str(home), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    return run


@pytest.fixture
def appinsights() -> Iterator[Ingestion]:
    """A loopback Application Insights ingestion endpoint; its ``env`` points a process's exporters at it."""
    from tests.appinsights import Ingestion

    ingestion = Ingestion()
    yield ingestion
    ingestion.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist, tests on the simulated Azure share a worker and its SimAzure, whose venvs are built once;
    the whole Jenkins path, the longest test by far, has a worker (and a SimAzure) of its own."""
    for item in items:
        if "simazure" in getattr(item, "fixturenames", ()):
            whole_path = item.path.name == "test_pipeline_azure.py"
            item.add_marker(pytest.mark.xdist_group("simazure-jenkins" if whole_path else "simazure"))


@pytest.fixture(autouse=True)
def _simazure_per_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test's ``gateway.refused`` holds what that test's processes tried, not an earlier test's on the worker;
    any exchange of the test that did not fit Azure's OpenAPI spec fails it."""
    if "simazure" not in request.fixturenames:
        yield
        return
    sim = request.getfixturevalue("simazure")
    sim.gateway.refused.clear()
    sim.spec_problems.clear()
    yield
    assert sim.spec_problems == [], "exchanges off Azure's spec:\n" + "\n".join(dict.fromkeys(sim.spec_problems))


@pytest.fixture(scope="session")
def simazure() -> Iterator[SimAzure]:
    """The simulated Azure (tests/simazure), one per test session: its venvs and images are cached in it."""
    from tests.simazure.service import SimAzure

    # Short paths: venv shebangs and the kit's own state stay readable in failure messages.
    with tempfile.TemporaryDirectory(prefix="simazure-") as state, SimAzure(Path(state)) as sim:
        yield sim
