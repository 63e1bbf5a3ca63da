"""Settings come from defaults, mlops.toml, the environment and overrides, and bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from diabetes_mlops.config import load_settings
from diabetes_mlops.errors import ConfigError


def test_file_then_environment_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "mlops.toml"
    config.write_text('alpha = 2.5\nqa_port = 9001\ncv_alphas = [0.1, 1.0]\nmodel_name = "from-file"\n')
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
    config = tmp_path / "mlops.toml"
    config.write_text("alpah = 1.0\n")
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
