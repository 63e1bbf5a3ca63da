"""The model a service scores with: loaded from a version directory, verified, and made cheap to call."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from diabetes_mlops.artifacts import MODEL_FILE, load_model
from diabetes_mlops.errors import RegistryError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

METADATA_FILE = "metadata.json"


def linear_predictor(model: Pipeline) -> Callable[[np.ndarray], np.ndarray]:
    """``model.predict`` on a float64 matrix already validated at the boundary.

    A StandardScaler + Ridge pipeline is one affine map, folded here into weights and a bias, so a call
    skips the per-call checks of ``Pipeline.predict`` (most of its cost for a single row). Any other
    pipeline is called as it is.
    """
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    steps = [step for _, step in model.steps]
    if len(steps) == 2 and type(steps[0]) is StandardScaler and type(steps[1]) is Ridge:
        scaler, ridge = steps
        mean = scaler.mean_ if scaler.with_mean else np.zeros_like(ridge.coef_)
        scale = scaler.scale_ if scaler.with_std else np.ones_like(ridge.coef_)
        weights = np.ascontiguousarray(ridge.coef_ / scale)
        bias = float(ridge.intercept_ - mean @ weights)
        return lambda x: x @ weights + bias
    return lambda x: model.predict(x)


@dataclass(frozen=True)
class ServedModel:
    """A verified model and its identity, as the service reports it."""

    name: str
    version: int
    model: Pipeline
    predict: Callable[[np.ndarray], np.ndarray]

    @classmethod
    def from_dir(cls, path: Path) -> ServedModel:
        """Load a version directory (``model.skops`` + ``metadata.json``), checking the sha256."""
        path = Path(path)
        try:
            metadata = json.loads((path / METADATA_FILE).read_text())
        except FileNotFoundError:
            raise RegistryError(f"{path} is not a model directory: no {METADATA_FILE}") from None
        model = load_model(path / MODEL_FILE, metadata["sha256"])
        return cls(metadata["name"], int(metadata["version"]), model, linear_predictor(model))
