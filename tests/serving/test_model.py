"""The served model: verified, read from the stored affine map (or folded in a child process for versions
registered before it), the same numbers as the pipeline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diabetes_mlops.artifacts import AFFINE_FILE, MODEL_FILE
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


LOAD_WATCHED = """
import json, sys
from pathlib import Path
spawned = []
sys.addaudithook(lambda event, args: spawned.append(event) if event in ("subprocess.Popen", "os.posix_spawn") else None)
from diabetes_mlops.serving.model import ServedModel
served = ServedModel.from_dir(Path(sys.argv[1]))
print(json.dumps({"spawned": spawned, "sklearn": "sklearn" in sys.modules, "affine": served.affine is not None}))
"""


def test_an_affine_version_loads_from_its_stored_map_without_a_child_or_scikit_learn(tmp_path: Path) -> None:
    """The child's scikit-learn import is a second or more of CPU before any row is scored."""
    settings = load_settings(home=tmp_path / "home")
    path = settings.registry_dir / settings.model_name / str(register_model(settings))
    done = subprocess.run([sys.executable, "-c", LOAD_WATCHED, str(path)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"spawned": [], "sklearn": False, "affine": True}


def test_a_version_registered_before_the_stored_map_is_still_folded(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    path = settings.registry_dir / settings.model_name / str(register_model(settings))
    stored = ServedModel.from_dir(path)
    metadata = json.loads((path / "metadata.json").read_text())
    del metadata["affine_sha256"]
    (path / "metadata.json").write_text(json.dumps(metadata))
    (path / AFFINE_FILE).unlink()
    folded = ServedModel.from_dir(path)
    assert folded.affine is not None and stored.affine is not None
    assert folded.affine[0].tolist() == stored.affine[0].tolist() and folded.affine[1] == stored.affine[1]


def test_a_changed_or_missing_affine_map_is_refused(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    path = settings.registry_dir / settings.model_name / str(register_model(settings))
    folded = json.loads((path / AFFINE_FILE).read_text())
    (path / AFFINE_FILE).write_text(json.dumps({**folded, "bias": folded["bias"] + 1.0}))
    with pytest.raises(IntegrityError, match=r"checksum mismatch .* affine map file was changed"):
        ServedModel.from_dir(path)
    (path / AFFINE_FILE).unlink()
    with pytest.raises(IntegrityError, match="missing"):
        ServedModel.from_dir(path)


def test_a_model_that_is_not_affine_is_loaded_and_called_as_it_is(tmp_path: Path) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    rows = load_builtin().loc[:, list(FEATURES)].to_numpy()
    model = Pipeline([("ridge", Ridge())]).fit(rows, load_builtin()["target"])
    entry = LocalRegistry(tmp_path).register("diabetes", model, {})
    served = ServedModel.from_dir(tmp_path / "diabetes" / str(entry.version))
    assert served.affine is None
    np.testing.assert_allclose(served.predict(rows), model.predict(rows), rtol=1e-9)
