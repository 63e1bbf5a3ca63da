"""The model a service scores with: loaded from a version directory, verified, and made cheap to call.

A StandardScaler + Ridge pipeline is one affine map. A short-lived child process loads the skops file
(checking its sha256), folds the pipeline into weights and a bias, and hands them back; the serving
process then never imports scikit-learn, and with it scipy.stats, pandas and pyarrow (about 150 MB per
worker it would carry for nothing). Any other pipeline is loaded and called in the serving process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from diabetes_mlops.artifacts import MODEL_FILE, load_model
from diabetes_mlops.errors import IntegrityError, RegistryError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

METADATA_FILE = "metadata.json"


def affine_map(model: Pipeline) -> tuple[list[float], float] | None:
    """The weights and bias of a StandardScaler + Ridge pipeline (the same numbers to 1e-9), else None."""
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    steps = [step for _, step in model.steps]
    if len(steps) != 2 or type(steps[0]) is not StandardScaler or type(steps[1]) is not Ridge:
        return None
    scaler, ridge = steps
    mean = scaler.mean_ if scaler.with_mean else np.zeros_like(ridge.coef_)
    scale = scaler.scale_ if scaler.with_std else np.ones_like(ridge.coef_)
    weights = ridge.coef_ / scale
    return weights.tolist(), float(ridge.intercept_ - mean @ weights)


def _load(path: Path) -> tuple[dict[str, Any], Pipeline]:
    try:
        metadata = json.loads((path / METADATA_FILE).read_text())
    except FileNotFoundError:
        raise RegistryError(f"{path} is not a model directory: no {METADATA_FILE}") from None
    return metadata, load_model(path / MODEL_FILE, metadata["sha256"])


@dataclass(frozen=True)
class ServedModel:
    """A verified model and its identity, as the service reports it."""

    name: str
    version: int
    predict: Callable[[np.ndarray], np.ndarray]
    affine: tuple[np.ndarray, float] | None = None

    def predict_columns(self, columns: list[np.ndarray]) -> np.ndarray:
        """``predict`` on the matrix whose columns these are, without building it when the model is affine."""
        if self.affine is None:
            return self.predict(np.column_stack(columns))
        weights, bias = self.affine
        out = np.full(len(columns[0]), bias)
        term = np.empty_like(out)
        with np.errstate(all="ignore"):  # rows with NaN or huge values are rejected, not scored
            for weight, column in zip(weights, columns, strict=True):
                out += np.multiply(column, weight, out=term)
        return out

    @classmethod
    def from_dir(cls, path: Path) -> ServedModel:
        """Load a version directory (``model.skops`` + ``metadata.json``), checking the sha256."""
        path = Path(path).resolve()
        done = subprocess.run([sys.executable, "-m", __name__, str(path)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "the model loader failed"
            kind, _, text = message.partition(": ")
            raise {"IntegrityError": IntegrityError, "RegistryError": RegistryError}.get(kind, RegistryError)(text)
        folded = json.loads(done.stdout)
        if folded["weights"] is None:
            _, model = _load(path)
            return cls(folded["name"], folded["version"], lambda x: model.predict(x))
        weights, bias = np.array(folded["weights"], dtype=np.float64), folded["bias"]
        return cls(folded["name"], folded["version"], lambda x: x @ weights + bias, (weights, bias))


def main(path: str) -> None:
    """The child's side: verify and load, then print the identity and the affine map (or null)."""
    try:
        metadata, model = _load(Path(path))
    except (IntegrityError, RegistryError) as exc:
        sys.exit(f"{type(exc).__name__}: {exc}")
    folded = affine_map(model)
    weights, bias = folded if folded is not None else (None, None)
    print(json.dumps({"name": metadata["name"], "version": int(metadata["version"]), "weights": weights, "bias": bias}))


if __name__ == "__main__":
    main(sys.argv[1])
