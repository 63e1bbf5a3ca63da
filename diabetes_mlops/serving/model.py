"""The model a service scores with: loaded from a version directory, verified, and made cheap to call.

A StandardScaler + Ridge pipeline is one affine map. The registry stores it beside the model
(``affine.json``, its sha256 in ``metadata.json``), so loading such a version is hashing two small files:
no scikit-learn, and with it no scipy.stats, pandas and pyarrow (about 150 MB per worker it would carry for
nothing, and a second or two of start-up). A version without the file (registered before it existed) is
folded by a short-lived child process that loads the skops file, and any other pipeline is loaded and
called in the serving process.
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

from diabetes_mlops.artifacts import (
    AFFINE_FILE,
    METADATA_FILE,
    MODEL_FILE,
    affine_map,
    load_affine,
    load_model,
    verify_model,
)
from diabetes_mlops.errors import IntegrityError, RegistryError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def _metadata(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / METADATA_FILE).read_text())
    except FileNotFoundError:
        raise RegistryError(f"{path} is not a model directory: no {METADATA_FILE}") from None


def _load(path: Path) -> tuple[dict[str, Any], Pipeline]:
    metadata = _metadata(path)
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
    def affine_model(cls, name: str, version: int, weights: list[float], bias: float) -> ServedModel:
        """The model that scores ``x @ weights + bias``."""
        array = np.array(weights, dtype=np.float64)
        return cls(name, version, lambda x: x @ array + bias, (array, bias))

    @classmethod
    def from_dir(cls, path: Path) -> ServedModel:
        """Load a version directory (``model.skops``, ``metadata.json``, any ``affine.json``), checking sha256s."""
        path = Path(path).resolve()
        metadata = _metadata(path)
        if metadata.get("affine_sha256") is not None:
            # The model file is not read, but a version is served only when every registered file is intact.
            verify_model(path / MODEL_FILE, metadata["sha256"])
            weights, bias = load_affine(path / AFFINE_FILE, metadata["affine_sha256"])
            return cls.affine_model(metadata["name"], int(metadata["version"]), weights, bias)
        done = subprocess.run([sys.executable, "-m", __name__, str(path)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "the model loader failed"
            kind, _, text = message.partition(": ")
            raise {"IntegrityError": IntegrityError, "RegistryError": RegistryError}.get(kind, RegistryError)(text)
        folded = json.loads(done.stdout)
        if folded["weights"] is None:
            _, model = _load(path)
            return cls(folded["name"], folded["version"], lambda x: model.predict(x))
        return cls.affine_model(folded["name"], folded["version"], folded["weights"], folded["bias"])


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
