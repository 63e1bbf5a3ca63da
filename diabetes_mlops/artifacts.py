"""Model files: written with skops (no pickle), read back only when their sha256 matches."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.errors import IntegrityError
from diabetes_mlops.files import sha256_file

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

MODEL_FILE = "model.skops"


def save_model(model: Pipeline, path: Path) -> str:
    """Write ``model`` to ``path`` with skops and return the file's sha256."""
    import skops.io as sio

    sio.dump(model, path)
    return sha256_file(path)


def verify_model(path: Path, sha256: str, use: str = "load") -> None:
    """Raise IntegrityError unless the file at ``path`` has the recorded ``sha256``."""
    actual = sha256_file(path)
    if actual != sha256:
        raise IntegrityError(
            f"{path}: checksum mismatch (recorded {sha256[:12]}..., found {actual[:12]}...): "
            f"the model file was changed after it was registered; refusing to {use} it"
        )


def load_model(path: Path, sha256: str) -> Pipeline:
    """Load a skops file after checking its sha256; types skops does not trust are refused."""
    import skops.io as sio

    verify_model(path, sha256)
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.load(path)
    except UntrustedTypesFoundException as exc:
        raise IntegrityError(f"{path}: refusing to load types that are not trusted: {exc}") from exc
