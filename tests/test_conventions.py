"""The conventions a user expects: --version, the testing extra, a quick start that runs on a fresh machine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO
from tests.unimportable import env_without

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_version_is_the_package_version(cli: Cli) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for flag in ("--version", "-V"):
        done = cli(flag)
        assert done.returncode == 0 and done.stdout == f"diabetes-mlops {project['version']}\n"


def test_strategies_without_hypothesis_name_the_testing_extra(tmp_path: Path) -> None:
    env = {**os.environ, **env_without(tmp_path, "hypothesis")}
    done = subprocess.run(
        [sys.executable, "-c", "import diabetes_mlops.strategies"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 1
    assert "ImportError: diabetes_mlops.strategies needs hypothesis: pip install 'diabetes-mlops[testing]'" in (
        done.stderr
    )
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("hypothesis>=") for req in extras["testing"])


def test_the_quick_start_installs_into_a_venv_then_tests_as_ci_does() -> None:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Try it.*?```bash\n(.*?)```", readme, re.S)
    assert block is not None
    first, second = block[1].strip().splitlines()
    # Debian and Ubuntu refuse `pip install` into the system Python (PEP 668): install into a venv.
    assert first.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert first.endswith("pip install . && diabetes-mlops run")
    assert second == "bash scripts/test.sh" and "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def test_monitoring_imports_nothing_from_the_pipelines() -> None:
    """Monitoring finds the training data through ``datasets``, not through the orchestration."""
    modules = (REPO / "diabetes_mlops" / "monitoring").glob("*.py")
    assert [path.name for path in modules if "diabetes_mlops.pipelines" in path.read_text()] == []
