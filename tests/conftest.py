"""Shared fixtures: a settings object and a CLI runner, both on a temporary home."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from diabetes_mlops.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


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
