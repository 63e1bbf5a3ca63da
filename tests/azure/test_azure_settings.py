"""Azure settings, client construction from them, the lazy imports, and the azure CLI verbs' errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_azureml import RG, SUB, WS, WS_PATH, FakeAzureML
from fakes import FakeCredential

from diabetes_mlops.azure.clients import ml_client, require
from diabetes_mlops.config import load_settings
from diabetes_mlops.errors import ConfigError

LAZY_MODULES = [
    "diabetes_mlops",
    "diabetes_mlops.cli",
    "diabetes_mlops.cli.azure",
    "diabetes_mlops.azure.targets",
    "diabetes_mlops.azure.training",
    "diabetes_mlops.azure.pipeline",
    "diabetes_mlops.registry.azureml",
    "diabetes_mlops.deploy.aci",
    "diabetes_mlops.deploy.aks",
    "diabetes_mlops.deploy.image",
    "diabetes_mlops.monitoring.blob",
    "diabetes_mlops.monitoring.telemetry",
]


def test_importing_the_package_and_every_azure_module_loads_no_sdk() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {LAZY_MODULES!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'kubernetes', 'opentelemetry'))\n"
        "print(json.dumps(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout) == []


def test_azure_settings_come_from_the_environment_and_are_checked(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DIABETES_MLOPS_AZURE_AKS_REPLICAS", "4")
    monkeypatch.setenv("DIABETES_MLOPS_AZURE_ACI_CPU", "0.5")
    monkeypatch.setenv("DIABETES_MLOPS_AZURE_SCHEDULE_CRON", "30 2 * * 1")
    settings = load_settings(config_file=None, home=tmp_path)
    assert (settings.azure.aks_replicas, settings.azure.aci_cpu) == (4, 0.5)
    assert settings.azure.schedule_cron == "30 2 * * 1"
    monkeypatch.setenv("DIABETES_MLOPS_AZURE_AKS_MAX_REPLICAS", "2")
    with pytest.raises(ConfigError, match="azure_aks_max_replicas"):
        load_settings(home=tmp_path)
    monkeypatch.setenv("DIABETES_MLOPS_AZURE_STORAGE_CONNECTION_STRING", "AccountKey=c2VjcmV0")
    monkeypatch.delenv("DIABETES_MLOPS_AZURE_AKS_MAX_REPLICAS")
    assert "c2VjcmV0" not in repr(load_settings(home=tmp_path))


def test_a_missing_setting_names_the_setting_and_its_variable(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, azure_subscription_id=SUB)
    assert require(settings.azure, "subscription_id") == SUB
    with pytest.raises(ConfigError, match=r"'azure_resource_group'.*DIABETES_MLOPS_AZURE_RESOURCE_GROUP"):
        ml_client(settings, FakeCredential())


def test_ml_client_from_the_three_settings_or_azure_mls_config_json(tmp_path: Path) -> None:
    workspace = FakeAzureML()
    settings = load_settings(home=tmp_path, azure_subscription_id=SUB, azure_resource_group=RG, azure_workspace=WS)
    client = ml_client(settings, FakeCredential(), transport=workspace.transport, enable_telemetry=False)
    assert client.workspaces.get(WS).location == "westeurope"
    assert workspace.transport.calls[-1].path == WS_PATH

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"subscription_id": SUB, "resource_group": RG, "workspace_name": WS}))
    from_file = ml_client(
        load_settings(home=tmp_path, azure_config_file=config),
        FakeCredential(),
        transport=workspace.transport,
        enable_telemetry=False,
    )
    assert (from_file.subscription_id, from_file.resource_group_name, from_file.workspace_name) == (SUB, RG, WS)
    with pytest.raises(ConfigError, match="does not exist"):
        ml_client(load_settings(home=tmp_path, azure_config_file=tmp_path / "nope.json"), FakeCredential())


def test_azure_verbs_report_a_missing_setting_as_one_line(tmp_path: Path, monkeypatch) -> None:
    import diabetes_mlops.cli.azure  # noqa: F401  (registers the group)
    from diabetes_mlops.cli.base import main

    for name in ("SUBSCRIPTION_ID", "RESOURCE_GROUP", "WORKSPACE", "CONFIG_FILE"):
        monkeypatch.delenv(f"DIABETES_MLOPS_AZURE_{name}", raising=False)
    runner = CliRunner()
    help_text = runner.invoke(main, ["azure", "--help"]).output
    for verb in ("compute", "train", "pipeline", "schedule", "image"):
        assert verb in help_text
    for replaced in ("undeploy-qa", "rollback-production"):  # now `undeploy qa` and `rollback` with --target azure
        assert replaced not in help_text
    result = runner.invoke(main, ["--home", str(tmp_path), "azure", "compute"])
    assert result.exit_code == 1
    assert "DIABETES_MLOPS_AZURE_SUBSCRIPTION_ID" in result.output
