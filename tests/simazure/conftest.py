"""Fixtures on the simulated Azure (the ``simazure`` fixture itself is in tests/conftest.py, shared with the
executed Jenkins builds): the environment a build agent on it has, and the kit's settings there."""

from __future__ import annotations

from pathlib import Path

import pytest

from diabetes_mlops.config import Settings, load_settings
from tests.simazure.service import SimAzure


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
