"""The served model: verified and folded in a child process, the same numbers as the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diabetes_mlops.artifacts import MODEL_FILE
from diabetes_mlops.config import load_settings
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.errors import IntegrityError, RegistryError
from diabetes_mlops.registry.local import LocalRegistry
from diabetes_mlops.serving.model import ServedModel
from tests.serving.conftest import register_model


def test_folded_model_predicts_as_the_pipeline(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    version = register_model(settings)
    served = ServedModel.from_dir(settings.registry_dir / settings.model_name / str(version))
    frame = load_builtin().loc[:, list(FEATURES)]
    pipeline = LocalRegistry(settings.registry_dir).load(settings.model_name, version)
    assert (served.name, served.version) == (settings.model_name, version)
    np.testing.assert_allclose(served.predict(frame.to_numpy()), pipeline.predict(frame), rtol=1e-9)


def test_a_changed_model_file_or_no_model_is_refused(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    path = settings.registry_dir / settings.model_name / str(register_model(settings))
    with pytest.raises(RegistryError, match="not a model directory"):
        ServedModel.from_dir(tmp_path)
    with open(path / MODEL_FILE, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        ServedModel.from_dir(path)
