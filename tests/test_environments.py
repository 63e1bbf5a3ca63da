"""A model is served only by the libraries it was trained with: locally this interpreter's, on Azure the image's."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diabetes_mlops.config import load_settings
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.deploy.bundle import write_bundle
from diabetes_mlops.deploy.environments import SERVED_LIBRARIES, EnvironmentMismatch, differences
from diabetes_mlops.deploy.release import release
from diabetes_mlops.deploy.targets import open_target
from diabetes_mlops.registry.local import LocalRegistry
from diabetes_mlops.train import library_versions, make_pipeline

VERSIONS = st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)


@given(st.dictionaries(st.sampled_from(SERVED_LIBRARIES), VERSIONS), st.data())
def test_only_served_libraries_that_differ_are_named(trained: dict[str, str], data: st.DataObject) -> None:
    serving = {name: data.draw(st.sampled_from([version, version + ".1"])) for name, version in trained.items()}
    serving["pandas"] = "0.0.0"  # trained with, never served: not compared
    found = differences({**trained, "pandas": "2.2.0"}, serving)
    assert found == [
        f"{name}: trained with {trained[name]}, served with {serving[name]}"
        for name in SERVED_LIBRARIES
        if name in trained and trained[name] != serving[name]
    ]


def test_python_is_compared_by_major_and_minor_version() -> None:
    assert differences({"python": "3.11.7"}, {"python": "3.11.9"}) == []
    assert differences({"python": "3.12.1"}, {"python": "3.11"}) == ["Python: trained with 3.12.1, served with 3.11"]


def register(home: Path, library_versions: dict[str, str]) -> int:
    settings = load_settings(home=home)
    frame = load_builtin()
    model = make_pipeline(1.0).fit(frame.loc[:, list(FEATURES)], frame["target"])
    registry = LocalRegistry(settings.registry_dir)
    return registry.register(settings.model_name, model, {"library_versions": library_versions}).version


def test_a_local_release_of_a_model_trained_with_another_scikit_learn_is_refused_naming_it(tmp_path: Path) -> None:
    here = library_versions()
    version = register(tmp_path / "home", {**here, "scikit-learn": "1.0.2"})
    settings = load_settings(home=tmp_path / "home")
    with pytest.raises(EnvironmentMismatch) as refused:
        release(settings, version, stage="qa")
    assert f"scikit-learn: trained with 1.0.2, served with {here['scikit-learn']}" in str(refused.value)
    assert open_target(settings, "local").endpoint("qa") is None  # nothing was started


def test_an_image_for_a_model_trained_with_another_python_is_refused_naming_it(tmp_path: Path) -> None:
    version = register(tmp_path / "home", {**library_versions(), "python": "3.13.1"})
    registry = LocalRegistry(load_settings(home=tmp_path / "home").registry_dir)
    expected = r"the scoring image .*Python: trained with 3\.13\.1, served with 3\.11"
    with pytest.raises(EnvironmentMismatch, match=expected):
        write_bundle(registry, "diabetes", version, tmp_path / "bundle", azure=True)
    assert not (tmp_path / "bundle").exists()
