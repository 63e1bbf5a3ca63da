"""Azure ML on the simulated Azure through the kit's own registry: MLClient by the cloud setting alone."""

from __future__ import annotations

import dataclasses

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential

from diabetes_mlops.azure.compute import compute_cluster
from diabetes_mlops.config import Settings
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.registry.azureml import AzureMLRegistry
from diabetes_mlops.train import make_pipeline
from tests.simazure.service import SimAzure


def fitted(alpha: float = 1.0):
    frame = load_builtin()
    return make_pipeline(alpha).fit(frame.loc[:, list(FEATURES)], frame["target"])


def test_register_list_and_load_a_model_through_the_custom_cloud(simazure: SimAzure, azure_settings: Settings) -> None:
    settings = dataclasses.replace(azure_settings, registry_backend="azureml")
    registry = AzureMLRegistry.from_settings(settings)
    before = len(registry.list_versions("simazure-model"))
    entry = registry.register("simazure-model", fitted(), {"params": {"alpha": 1.0}, "run_id": "r1"})
    assert [v.version for v in registry.list_versions("simazure-model")][-1] == entry.version == before + 1
    registry.set_alias("simazure-model", "production", entry.version)
    assert registry.resolve("simazure-model", "production") == entry.version
    model = registry.load("simazure-model", "production")
    assert model.predict(load_builtin().loc[:2, list(FEATURES)]).shape == (3,)
    # The model file went to the workspace's datastore in Azurite, by its content hash.
    blobs = [b.name for b in simazure.workspace.container.list_blobs(name_starts_with="diabetes-mlops/models/")]
    assert f"diabetes-mlops/models/simazure-model/{entry.sha256}/model.skops" in blobs
    assert simazure.gateway.refused == []


def test_a_principal_without_a_role_gets_403_naming_it(simazure: SimAzure, azure_settings: Settings) -> None:
    reader = simazure.entra.add_principal()
    simazure.rbac.assign(reader, "Reader", simazure.scopes.workspace)
    credential = ClientSecretCredential(
        simazure.entra.tenant,
        reader.client_id,
        reader.secret,
        authority=simazure.base_url,
        disable_instance_discovery=True,
    )
    registry = AzureMLRegistry.from_settings(
        dataclasses.replace(azure_settings, registry_backend="azureml"), credential
    )
    registry.list_versions("simazure-model")  # reading is allowed
    with pytest.raises(HttpResponseError) as caught:
        registry.ml_client.compute.begin_create_or_update(compute_cluster(azure_settings)).result()
    assert caught.value.status_code == 403
    assert reader.client_id in str(caught.value)
