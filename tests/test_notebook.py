"""The quickstart notebook runs clean from top to bottom in a fresh home and stops what it started."""

from __future__ import annotations

import socket
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from diabetes_mlops.config import load_settings
from diabetes_mlops.deploy.local import ENVIRONMENTS, endpoints, undeploy

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "notebooks" / "quickstart.ipynb"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_stored_notebook_has_its_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs for cell in code)
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    rendered = [o.data for cell in code for o in cell.outputs if o.output_type in ("execute_result", "display_data")]
    inline = [d for d in rendered if "data:image/png;base64," in d.get("text/html", d.get("text/markdown", ""))]
    assert len(inline) == 3  # the retrain, its model card and the drift report, each with its plots


@pytest.mark.slow
def test_the_notebook_runs_clean_in_a_fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    # The kernel is a child process: it inherits these, so the notebook's load_settings() sees them.
    monkeypatch.setenv("DIABETES_MLOPS_HOME", str(home))
    monkeypatch.setenv("DIABETES_MLOPS_QA_PORT", str(free_port()))
    monkeypatch.setenv("DIABETES_MLOPS_PRODUCTION_PORT", str(free_port()))
    monkeypatch.setenv("DIABETES_MLOPS_TRACKING", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}})
    settings = load_settings(home=home)
    try:
        client.execute()
    finally:
        for env in ENVIRONMENTS:
            undeploy(settings, env)  # only if the notebook failed before its own clean-up
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    text = "\n".join(output.get("text", "") or output.get("data", {}).get("text/plain", "") for output in outputs)
    shown = {
        cell.source.splitlines()[-1].split()[0]: cell.outputs[-1].get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
    }
    assert "builtin: 442 rows, all checks passed" in text
    assert "registered version: 1" in text
    assert shown["outcome"]["text/html"].startswith("<p><b>registered diabetes:1 as champion</b>")
    assert shown["outcome"]["text/html"].count('<img src="data:image/png;base64,') == 3
    assert shown["outcome.model_card"]["text/markdown"].count("](data:image/png;base64,") == 3
    assert "MLflow run:" in text and "'model_card.md'" in text
    assert "<th>challenger</th><th>champion</th>" in shown["again.evaluation"]["text/html"]
    assert shown["released"]["text/html"].startswith("<p><b>diabetes:1 released</b>")
    assert "![bmi](data:image/png;base64," in shown["report"]["text/markdown"]
    assert "all checks passed against" in text
    assert "drift in bmi over 600 logged rows" in text
    assert "already ingested (same sha256), nothing added" in text
    assert "no logged scoring request with this request_id" in text
    assert "due: True" in text and "due now: False" in text
    assert "still running: []" in text
    assert (home / "drift" / "last.json").is_file()
    assert endpoints(settings) == []
