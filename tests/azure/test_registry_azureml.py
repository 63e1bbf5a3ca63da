"""The Azure ML registry through the real azure-ai-ml client, a fake workspace and Azurite for the files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_azureml import WS_PATH
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from diabetes_mlops.artifacts import verify_version_files
from diabetes_mlops.azure.artifacts import DatastoreFiles
from diabetes_mlops.errors import IntegrityError, RegistryError
from diabetes_mlops.registry.azureml import METADATA_PROPERTY, AzureMLRegistry
from diabetes_mlops.serving.model import ServedModel


def _model(alpha: float):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 10))
    return make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x, x @ np.arange(10.0))


def _metadata(n: int) -> dict[str, object]:
    return {
        "params": {"alpha": float(n)},
        "metrics": {"r2": [0.0, 0.25, 0.5, 0.75][n], "mse": 3000.0 - n},
        "data_fingerprint": f"fp{n}",
        "git_commit": f"c0ffee{n}",
        "replaced": n - 1 if n > 1 else None,
        "run_id": f"run-{n}",
        "tags": {"trained_by": "diabetes-mlops"},
    }


@pytest.fixture
def registry(ml_client, container, tmp_path) -> AzureMLRegistry:
    return AzureMLRegistry(ml_client, DatastoreFiles(container), tmp_path / "cache")


def test_register_sends_lineage_tags_and_a_datastore_path(registry, workspace, container) -> None:
    entry = registry.register("diabetes", _model(1.0), _metadata(1))
    assert entry.version == 1
    assert entry.metrics == {"r2": 0.25, "mse": 2999.0}

    (put,) = workspace.transport.find("PUT", rf"{WS_PATH}/models/diabetes/versions/1")
    assert put.api_version == "2023-08-01-preview"
    assert put.url.startswith("https://management.azure.com/")
    props = put.body["properties"]
    assert props["modelType"] == "custom_model"
    assert props["modelUri"].endswith(
        f"/datastores/workspaceblobstore/paths/diabetes-mlops/models/diabetes/{entry.sha256}/"
    )
    assert props["tags"] == {
        "trained_by": "diabetes-mlops",
        "metric.r2": "0.25",
        "metric.mse": "2999",
        "sha256": entry.sha256,
        "data_fingerprint": "fp1",
        "git_commit": "c0ffee1",
        "run_id": "run-1",
    }
    stored = json.loads(props["properties"][METADATA_PROPERTY])
    assert stored["sha256"] == entry.sha256 and stored["params"] == {"alpha": 1.0}
    assert stored["affine_sha256"] == entry.affine_sha256 and len(entry.affine_sha256 or "") == 64
    folder = f"diabetes-mlops/models/diabetes/{entry.sha256}"
    assert [b.name for b in container.list_blobs()] == [f"{folder}/affine.json", f"{folder}/model.skops"]
    assert put.headers["Authorization"].startswith("Bearer ey")
    assert workspace.transport.unmatched == []


def test_versions_aliases_rollback_and_history(registry) -> None:
    for n in (1, 2, 3):
        registry.register("diabetes", _model(float(n)), _metadata(n))
    assert [v.version for v in registry.list_versions("diabetes")] == [1, 2, 3]
    assert registry.get("diabetes", "latest").version == 3
    with pytest.raises(RegistryError, match="no 'champion' alias"):
        registry.get("diabetes", "champion")

    for n in (1, 2, 3):
        registry.set_alias("diabetes", "champion", n)
    registry.set_alias("diabetes", "production", 2)
    assert registry.aliases("diabetes") == {"champion": 3, "production": 2}
    assert registry.get("diabetes", "champion").data_fingerprint == "fp3"

    assert registry.rollback("diabetes", "champion").version == 2
    assert registry.rollback("diabetes", "champion").version == 1
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback("diabetes", "champion")
    assert registry.aliases("diabetes") == {"champion": 1, "production": 2}

    moves = [(m["alias"], m["version"], m["action"], m["previous"]) for m in registry.history("diabetes")]
    assert moves == [
        ("champion", 1, "promote", None),
        ("champion", 2, "promote", 1),
        ("champion", 3, "promote", 2),
        ("production", 2, "promote", None),
        ("champion", 2, "rollback", 3),
        ("champion", 1, "rollback", 2),
    ]
    with pytest.raises(RegistryError, match="unknown alias"):
        registry.set_alias("diabetes", "staging", 1)
    with pytest.raises(RegistryError, match="no version 9"):
        registry.set_alias("diabetes", "champion", 9)


def test_an_alias_tag_left_behind_by_an_interrupted_move_loses_to_the_newer_one(registry, workspace) -> None:
    for n in (1, 2):
        registry.register("diabetes", _model(float(n)), _metadata(n))
    registry.set_alias("diabetes", "champion", 1)
    registry.set_alias("diabetes", "champion", 2)
    # Put the old holder's tag back, as if the second write of the move had never happened.
    version_1 = workspace.models["diabetes"][1]["properties"]["tags"]
    version_2 = workspace.models["diabetes"][2]["properties"]["tags"]
    assert "alias.champion" not in version_1
    version_1["alias.champion"] = "2000-01-01T00:00:00.000000+00:00"
    assert registry.aliases("diabetes") == {"champion": 2}
    assert version_2["alias.champion.previous"] == "1"


def test_load_checks_the_sha256_and_refuses_a_changed_file(registry, container) -> None:
    model = _model(2.0)
    entry = registry.register("diabetes", model, _metadata(1))
    x = np.ones((2, 10))
    np.testing.assert_allclose(registry.load("diabetes", 1).predict(x), model.predict(x))

    folder = f"diabetes-mlops/models/diabetes/{entry.sha256}"
    container.upload_blob(f"{folder}/affine.json", b'{"weights": [0], "bias": 0}', overwrite=True)
    with pytest.raises(IntegrityError, match=r"stored affine\.json does not match the sha256"):
        registry.version_dir("diabetes", 1)
    container.upload_blob(f"{folder}/model.skops", b"tampered", overwrite=True)
    with pytest.raises(IntegrityError, match="does not match the sha256"):
        registry.load("diabetes", 1)


def test_missing_versions_and_empty_models_are_registry_errors(registry) -> None:
    assert registry.list_versions("nobody") == []
    assert registry.aliases("nobody") == {}
    with pytest.raises(RegistryError, match="no registered version"):
        registry.get("nobody", "latest")
    with pytest.raises(RegistryError, match="has no version 4"):
        registry.get("nobody", 4)


def test_datastore_files_from_the_workspace_default_datastore(ml_client, credential, workspace) -> None:
    files = DatastoreFiles.from_workspace(ml_client, credential)
    assert files.datastore == "workspaceblobstore"
    assert files.container.url == "https://stmlops.blob.core.windows.net/azureml-blobstore-123"
    assert files.uri("a/b/") == "azureml://datastores/workspaceblobstore/paths/a/b/"
    assert DatastoreFiles.prefix_of("azureml://subscriptions/s/datastores/d/paths/x/y/") == "x/y"
    (get,) = [c for c in workspace.transport.calls if "/datastores" in c.path]
    assert get.method == "GET"


def test_version_dir_is_a_verified_local_copy_for_the_bundle(registry, container) -> None:
    entry = registry.register("diabetes", _model(1.0), _metadata(1))
    registry.set_alias("diabetes", "production", 1)
    folder = registry.version_dir("diabetes", "production")
    assert folder.name == "1"
    assert sorted(p.name for p in folder.iterdir()) == ["affine.json", "metadata.json", "model.skops"]
    assert json.loads((folder / "metadata.json").read_text())["sha256"] == entry.sha256
    assert ServedModel.from_dir(folder).affine is not None
    # A local copy changed on disk is fetched again rather than trusted.
    for changed in ("model.skops", "affine.json"):
        (folder / changed).write_bytes(b"changed")
        again = registry.version_dir("diabetes", 1)
        assert again == folder
        verify_version_files(again, entry)
