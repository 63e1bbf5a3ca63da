"""Settings come from defaults, mlops.toml, the environment and overrides, and bad values are named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from diabetes_mlops.config import AzureSettings, load_settings, setting_values
from diabetes_mlops.errors import ConfigError


def config_file(tmp_path: Path, text: str) -> Path:
    """An ``mlops.toml`` holding ``text``."""
    config = tmp_path / "mlops.toml"
    config.write_text(text)
    return config


def test_file_then_environment_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_file(tmp_path, 'alpha = 2.5\nqa_port = 9001\ncv_alphas = [0.1, 1.0]\nmodel_name = "from-file"\n')
    monkeypatch.setenv("DIABETES_MLOPS_QA_PORT", "9101")
    monkeypatch.setenv("DIABETES_MLOPS_HOME", str(tmp_path / "h"))
    settings = load_settings(config, model_name="from-override")
    assert settings.alpha == 2.5
    assert settings.cv_alphas == (0.1, 1.0)
    assert settings.qa_port == 9101
    assert settings.home == tmp_path / "h"
    assert settings.model_name == "from-override"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("DIABETES_MLOPS_ALPHA", "lots", "'alpha'"),
        ("DIABETES_MLOPS_ALPHA", "-1", "'alpha'"),
        ("DIABETES_MLOPS_PRODUCTION_PORT", "70000", "'production_port'"),
        ("DIABETES_MLOPS_TEST_SIZE", "1.5", "'test_size'"),
        ("DIABETES_MLOPS_REGISTRY_BACKEND", "s3", "'registry_backend'"),
    ],
)
def test_a_bad_value_names_its_key(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    config = config_file(tmp_path, "alpah = 1.0\n")
    with pytest.raises(ConfigError, match="unknown setting 'alpah'"):
        load_settings(config)


def test_unknown_argument_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="argument alpah: unknown setting 'alpah'") as raised:
        load_settings(home=tmp_path, alpah=1.0)
    assert raised.value.key == "alpah"


def test_scoring_key_is_not_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIABETES_MLOPS_SCORING_KEY", "s3cret-value")
    settings = load_settings()
    assert settings.scoring_key == "s3cret-value"
    assert "s3cret-value" not in repr(settings)


@pytest.mark.parametrize(
    "text",
    ['azure_location = "westeurope"\nazure_aks_replicas = 3\n', '[azure]\nlocation = "westeurope"\naks_replicas = 3\n'],
    ids=["flat", "table"],
)
def test_azure_settings_from_flat_keys_or_the_azure_table(tmp_path: Path, text: str) -> None:
    config = config_file(tmp_path, "alpha = 2.0\n" + text)
    settings = load_settings(config)
    assert (settings.alpha, settings.azure.location, settings.azure.aks_replicas) == (2.0, "westeurope", 3)


def test_an_azure_setting_given_both_ways_names_both(tmp_path: Path) -> None:
    config = config_file(tmp_path, 'azure_location = "westeurope"\n[azure]\nlocation = "northeurope"\n')
    with pytest.raises(ConfigError, match="'azure_location' and 'location' in \\[azure\\]"):
        load_settings(config)


def test_an_unknown_key_in_the_azure_table_is_named(tmp_path: Path) -> None:
    config = config_file(tmp_path, "[azure]\naks_replicaz = 3\n")
    with pytest.raises(ConfigError, match=re.escape(f"{config}: unknown setting 'aks_replicaz' in [azure]")):
        load_settings(config)


def test_azure_settings_from_the_environment_and_arguments_win_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_file(tmp_path, '[azure]\nlocation = "westeurope"\naks_replicas = 3\n')
    monkeypatch.setenv("DIABETES_MLOPS_AZURE_LOCATION", "northeurope")
    settings = load_settings(config, azure_aks_replicas=4)
    assert (settings.azure.location, settings.azure.aks_replicas) == ("northeurope", 4)


@pytest.mark.parametrize(
    ("text", "variable", "argument", "origin"),
    [
        ("[azure]\naks_replicas = 0\n", None, None, "mlops.toml"),
        ("", "DIABETES_MLOPS_AZURE_AKS_REPLICAS", None, "DIABETES_MLOPS_AZURE_AKS_REPLICAS"),
        ("", None, 0, "argument azure_aks_replicas"),
    ],
)
def test_a_bad_azure_value_names_its_key_as_users_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, variable: str | None, argument: int | None, origin: str
) -> None:
    config = config_file(tmp_path, text)
    if variable:
        monkeypatch.setenv(variable, "0")
    with pytest.raises(ConfigError, match=f"{origin}: setting 'azure_aks_replicas' has an invalid value: 0") as raised:
        load_settings(config, azure_aks_replicas=argument)
    assert raised.value.key == "azure_aks_replicas"


def test_azure_settings_check_themselves_by_the_keys_users_set() -> None:
    with pytest.raises(ConfigError, match="'azure_aks_max_replicas' has an invalid value: 6") as raised:
        AzureSettings(aks_replicas=7)
    assert raised.value.key == "azure_aks_max_replicas"


def test_every_setting_by_its_key_loads_the_same_settings(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, alpha=3.0, cv_alphas="0.1,1", azure_aks_replicas=3, azure_location="x")
    assert load_settings(**setting_values(settings)) == settings
    assert setting_values(settings)["azure_aks_replicas"] == 3
