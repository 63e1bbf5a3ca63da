"""The README and docs/ tell a newcomer what the code does: every variable, every file a run writes, each how-to."""

from __future__ import annotations

import re

from diabetes_mlops import runs
from diabetes_mlops.config import ENV_PREFIX, setting_types
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in (REPO / "docs").glob("*.md")}


def package_variables() -> set[str]:
    """Every ``DIABETES_MLOPS_*`` variable the package reads by name, besides the one of each setting."""
    source = "\n".join(path.read_text() for path in (REPO / "diabetes_mlops").rglob("*.py"))
    named = re.findall(r"DIABETES_MLOPS_([A-Z_]*[A-Z])", source) + re.findall(r"ENV_PREFIX}([A-Z_]+)", source)
    settings = {key.upper() for key in setting_types()}
    return {ENV_PREFIX + name for name in named if name not in settings and name != "X"}


def test_every_variable_the_package_reads_is_listed_with_the_settings() -> None:
    variables = package_variables()
    assert {"DIABETES_MLOPS_CONFIG", "DIABETES_MLOPS_RUN_DIR", "DIABETES_MLOPS_MODEL_DIR"} <= variables
    assert sorted(v for v in variables if v not in README) == []
    assert "`PORT`" in README  # serve's port variable, the one the image sets


def test_the_home_layout_names_every_file_a_run_writes() -> None:
    layout = README[README.index("## Where things are") :]
    run_files = [
        runs.MODEL_FILE,
        runs.TRAIN_FILE,
        runs.TEST_SPLIT_FILE,
        runs.VALIDATION_FILE,
        runs.REGISTERED_FILE,
        runs.EVALUATION_FILE,
        runs.MODEL_CARD,
        runs.MLFLOW_FILE,
        *runs.PLOTS,
    ]
    assert [name for name in run_files if name not in layout] == []
    assert "undeploy --all" in layout and "DIABETES_MLOPS_RUNTIME_DIR" in layout


def test_newcomer_how_tos() -> None:
    assert "jupyter lab docs/notebooks/quickstart.ipynb" in README
    assert "X-Ms-Request-Id" in DOCS["monitoring.md"] and "request_id" in DOCS["monitoring.md"]
    assert re.search(r"scripts/test\.sh.{0,400}about \d+ minutes.{0,600}root", README, re.DOTALL)
    assert "pip install '.[azure]'" in DOCS["azure.md"]
