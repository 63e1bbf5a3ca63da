"""Azure ML's entry-script contract, ``init()`` and ``run(raw_data)``, on the same parsing and model code.

Azure ML's inference server (``azmlinfsrv``) and managed online endpoints import this module, call
``init()`` once and ``run()`` per request. The model directory is ``AZUREML_MODEL_DIR`` (set by Azure ML)
or ``DIABETES_MLOPS_MODEL_DIR``, searched for the ``metadata.json`` written by the registry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from diabetes_mlops.artifacts import METADATA_FILE
from diabetes_mlops.serving.model import ServedModel
from diabetes_mlops.serving.parsing import InputError, parse_body
from diabetes_mlops.serving.scorer import Scorer, ServiceConfig

_scorer: Scorer | None = None


def _model_dir() -> Path:
    root = Path(os.environ.get("AZUREML_MODEL_DIR") or os.environ.get("DIABETES_MLOPS_MODEL_DIR") or "model")
    found = sorted(root.rglob(METADATA_FILE))
    if not found:
        raise FileNotFoundError(f"no {METADATA_FILE} under {root}")
    return found[0].parent


def init() -> None:
    """Load and verify the model once per worker; the server that runs us logs the requests."""
    global _scorer
    _scorer = Scorer(ServedModel.from_dir(_model_dir()), ServiceConfig())


def _error(status: int, message: str) -> Any:
    """An HTTP error answer: the inference server's AMLResponse when it runs us, else a plain dict."""
    try:
        from azureml_inference_server_http.api.aml_response import AMLResponse
    except ImportError:
        return {"error": message, "status": status}
    return AMLResponse({"error": message}, status, json_str=True)


def run(raw_data: str | bytes) -> Any:
    """Score a request body in any of the three input forms; bad input is a 4xx answer, not an exception."""
    if _scorer is None:
        return _error(503, "model not loaded: init() has not run")
    try:
        parsed = parse_body(raw_data.encode() if isinstance(raw_data, str) else raw_data, _scorer.config.max_rows)
    except InputError as exc:
        return _error(exc.status, exc.message)
    predictions = _scorer.score(parsed.matrix, _scorer.begin({}))
    return {"result": predictions.tolist(), "model": _scorer.identity}
