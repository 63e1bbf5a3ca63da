"""Fixtures of the simulated Azure: one per test session (venvs and images are cached in it), and the
environment a build agent on it has."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from diabetes_mlops.config import Settings, load_settings
from tests.simazure.service import SimAzure


@pytest.fixture(scope="session")
def simazure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimAzure]:
    # Short paths: venv shebangs and the kit's own state stay readable in failure messages.
    with tempfile.TemporaryDirectory(prefix="simazure-") as state, SimAzure(Path(state)) as sim:
        yield sim


@pytest.fixture
def simazure_env(simazure: SimAzure, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process as a build agent on the simulated Azure (variables reset after the test)."""
    env = simazure.client_env()
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)  # MLClient records its cloud here; undone after
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def azure_settings(simazure_env: dict[str, str], tmp_path: Path) -> Settings:
    """The kit's settings on the simulated Azure, read from the environment as the CLI reads them."""
    return load_settings(home=tmp_path / "home", scoring_key="smoke-key-123", azure_deploy_timeout=300.0)
