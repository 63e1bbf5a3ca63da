"""Model files: written with skops (no pickle), read back only when their sha256 matches.

Beside a StandardScaler + Ridge pipeline goes its affine map (``affine.json``: weights and bias), so a
service can score with the same numbers after hashing two small files instead of importing scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.errors import IntegrityError
from diabetes_mlops.files import sha256_file

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from diabetes_mlops.registry.base import ModelVersion

MODEL_FILE = "model.skops"
AFFINE_FILE = "affine.json"
METADATA_FILE = "metadata.json"


def save_model(model: Pipeline, path: Path) -> str:
    """Write ``model`` to ``path`` with skops and return the file's sha256."""
    import skops.io as sio

    sio.dump(model, path)
    return sha256_file(path)


def _refused(path: Path, recorded: str, actual: str | None, use: str) -> IntegrityError:
    """The error for a registered file that is missing (``actual`` None) or not the one registered."""
    if actual is None:
        return IntegrityError(f"{path}: missing, though it was registered; refusing to {use} the version")
    what = "affine map" if path.name == AFFINE_FILE else "model"
    return IntegrityError(
        f"{path}: checksum mismatch (recorded {recorded[:12]}..., found {actual[:12]}...): "
        f"the {what} file was changed after it was registered; refusing to {use} it"
    )


def verify_model(path: Path, sha256: str, use: str = "load") -> None:
    """Raise IntegrityError unless the file at ``path`` (a model or its affine map) has the recorded ``sha256``."""
    try:
        actual = sha256_file(path)
    except FileNotFoundError:
        raise _refused(path, sha256, None, use) from None
    if actual != sha256:
        raise _refused(path, sha256, actual, use)


def version_files(entry: ModelVersion) -> dict[str, str]:
    """The files a registered version is made of, each with the sha256 recorded for it."""
    files = {MODEL_FILE: entry.sha256}
    if entry.affine_sha256 is not None:
        files[AFFINE_FILE] = entry.affine_sha256
    return files


def verify_version_files(directory: Path, entry: ModelVersion, use: str = "load") -> None:
    """Raise IntegrityError unless ``directory`` holds the version's files as registered (model, affine map)."""
    for name, sha256 in version_files(entry).items():
        verify_model(directory / name, sha256, use)


def load_model(path: Path, sha256: str) -> Pipeline:
    """Load a skops file after checking its sha256; types skops does not trust are refused."""
    import skops.io as sio

    verify_model(path, sha256)
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.load(path)
    except UntrustedTypesFoundException as exc:
        raise IntegrityError(f"{path}: refusing to load types that are not trusted: {exc}") from exc


def affine_map(model: Pipeline) -> tuple[list[float], float] | None:
    """The weights and bias of a StandardScaler + Ridge pipeline (the same numbers to 1e-9), else None."""
    import numpy as np
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


def save_version_files(model: Pipeline, directory: Path) -> dict[str, str | None]:
    """Write ``model.skops`` and, if the model is affine, ``affine.json``; their ``ModelVersion`` sha256 fields."""
    folded = affine_map(model)
    hashes = {"sha256": save_model(model, directory / MODEL_FILE), "affine_sha256": None}
    if folded is not None:
        weights, bias = folded
        # JSON floats round-trip exactly: the service scores with the very numbers folded here.
        (directory / AFFINE_FILE).write_text(json.dumps({"weights": weights, "bias": bias}))
        hashes["affine_sha256"] = sha256_file(directory / AFFINE_FILE)
    return hashes


def load_affine(path: Path, sha256: str) -> tuple[list[float], float]:
    """The weights and bias stored at ``path``, once the bytes read have the recorded ``sha256``."""
    try:
        data = path.read_bytes()  # hashed and parsed from one read: what is checked is what is used
    except FileNotFoundError:
        raise _refused(path, sha256, None, "load") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise _refused(path, sha256, actual, "load")
    folded = json.loads(data)
    return folded["weights"], folded["bias"]
