"""One settings object: defaults, then an optional ``mlops.toml``, then ``DIABETES_MLOPS_*`` variables."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diabetes_mlops.azure.clouds import valid_setting as valid_cloud
from diabetes_mlops.errors import ConfigError

ENV_PREFIX = "DIABETES_MLOPS_"
CONFIG_FILE = "mlops.toml"
AZURE_PREFIX = "azure_"  # the setting users call ``azure_x`` is ``Settings.azure.x``


def _check(settings: object, checks: dict[str, bool], prefix: str = "") -> None:
    """A ConfigError for the first field whose check is false, naming it as users set it (``prefix`` + name)."""
    for name, ok in checks.items():
        if not ok:
            key = prefix + name
            raise ConfigError(f"setting {key!r} has an invalid value: {getattr(settings, name)!r}", key)


@dataclass(frozen=True)
class AzureSettings:
    """Azure's settings: field ``x`` is the setting ``azure_x`` (``x`` in mlops.toml's ``[azure]`` table too)."""

    cloud: str = "public"
    subscription_id: str | None = None
    resource_group: str | None = None
    workspace: str | None = None
    config_file: Path | None = None
    location: str | None = None
    experiment: str = "diabetes-mlops"
    compute_name: str = "cpu-cluster"
    compute_size: str = "Standard_DS3_v2"
    compute_max_nodes: int = 2
    compute_idle_seconds: int = 300
    environment_image: str = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    job_timeout: float = 3600.0
    training_data: str | None = None
    schedule_name: str = "diabetes-retrain"
    schedule_cron: str = "0 3 * * *"
    schedule_timezone: str = "UTC"
    acr_name: str | None = None
    aci_name: str = "diabetes-qa"
    aci_cpu: float = 1.0
    aci_memory_gb: float = 1.5
    aci_dns_label: str | None = None
    aci_identity: str | None = None
    aks_cluster: str | None = None
    aks_resource_group: str | None = None
    aks_namespace: str = "diabetes"
    aks_replicas: int = 2
    aks_max_replicas: int = 6
    aks_cpu: str = "500m"
    aks_memory: str = "512Mi"
    aks_target_cpu_percent: int = 70
    deploy_timeout: float = 900.0
    storage_account_url: str | None = None
    storage_connection_string: str | None = field(default=None, repr=False)
    storage_container: str = "scoring-logs"
    appinsights_connection_string: str | None = field(default=None, repr=False)
    identity_client_id: str | None = None
    aks_service_account: str | None = None
    key_vault: str | None = None
    check_access: bool = True

    def __post_init__(self) -> None:
        _check(
            self,
            {
                "cloud": valid_cloud(self.cloud),
                "compute_max_nodes": self.compute_max_nodes > 0,
                "compute_idle_seconds": self.compute_idle_seconds >= 0,
                "job_timeout": self.job_timeout > 0,
                "aci_cpu": self.aci_cpu > 0,
                "aci_memory_gb": self.aci_memory_gb > 0,
                "aks_replicas": self.aks_replicas > 0,
                "aks_max_replicas": self.aks_max_replicas >= self.aks_replicas,
                "aks_target_cpu_percent": 0 < self.aks_target_cpu_percent <= 100,
                "deploy_timeout": self.deploy_timeout > 0,
            },
            AZURE_PREFIX,
        )


@dataclass(frozen=True)
class Settings:
    """Every tunable of the kit; each setting ``x`` is set by ``x`` in mlops.toml or ``DIABETES_MLOPS_X``."""

    home: Path = Path(".mlops")
    model_name: str = "diabetes"
    data_path: Path | None = None
    seed: int = 42
    test_size: float = 0.2
    alpha: float = 1.0
    cv_alphas: tuple[float, ...] = ()
    r2_floor: float = 0.3
    min_improvement: float = 0.0
    registry_backend: str = "local"
    deploy_target: str = "local"
    smoke_timeout: float = 300.0
    qa_port: int = 8001
    production_port: int = 8000
    max_body_bytes: int = 1024 * 1024
    max_rows: int = 10_000
    serve_workers: int = 1
    host: str = "127.0.0.1"
    scoring_log: bool = True
    scoring_log_required: bool = False
    scoring_log_buffer: int = 50_000
    scoring_log_backlog_rows: int = 100_000
    scoring_log_upload_interval: float = 60.0
    live_metrics: bool = False
    drift_psi_threshold: float = 0.2
    drift_ks_pvalue: float = 0.01
    drift_min_rows: int = 100
    tracking: bool = True
    tracking_experiment: str = "diabetes-mlops"
    scoring_key: str | None = field(default=None, repr=False)
    scoring_previous_key: str | None = field(default=None, repr=False)
    azure: AzureSettings = field(default_factory=AzureSettings)

    def __post_init__(self) -> None:
        _check(
            self,
            {
                "test_size": 0.0 < self.test_size < 1.0,
                "alpha": self.alpha > 0,
                "cv_alphas": all(a > 0 for a in self.cv_alphas),
                "r2_floor": self.r2_floor <= 1.0,
                "min_improvement": 0.0 <= self.min_improvement < 1.0,
                "registry_backend": self.registry_backend in ("local", "azureml"),
                "deploy_target": self.deploy_target in ("local", "azure"),
                "smoke_timeout": self.smoke_timeout > 0,
                "qa_port": 0 < self.qa_port < 65536,
                "production_port": 0 < self.production_port < 65536,
                "max_body_bytes": self.max_body_bytes > 0,
                "max_rows": self.max_rows > 0,
                "serve_workers": self.serve_workers > 0,
                "scoring_log_buffer": self.scoring_log_buffer > 0,
                "scoring_log_backlog_rows": self.scoring_log_backlog_rows > 0,
                "scoring_log_upload_interval": self.scoring_log_upload_interval > 0,
                "drift_psi_threshold": self.drift_psi_threshold > 0,
                "drift_ks_pvalue": 0.0 <= self.drift_ks_pvalue <= 1.0,
                "drift_min_rows": self.drift_min_rows > 0,
            },
        )

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def registry_dir(self) -> Path:
        return self.home / "registry"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def drift_dir(self) -> Path:
        return self.home / "drift"

    @property
    def releases_dir(self) -> Path:
        return self.home / "releases"

    @property
    def production_url(self) -> str:
        return f"http://127.0.0.1:{self.production_port}"

    def port_for(self, env: str) -> int:
        """The loopback port of a local deployment environment (``qa`` or ``production``)."""
        return {"qa": self.qa_port, "production": self.production_port}[env]


def setting_types() -> dict[str, Any]:
    """Every setting's key, as users set it (mlops.toml, ``DIABETES_MLOPS_<KEY>``, ``load_settings``), and type."""
    hints = typing.get_type_hints(Settings)
    del hints["azure"]
    return hints | {AZURE_PREFIX + name: hint for name, hint in typing.get_type_hints(AzureSettings).items()}


def setting_values(settings: Settings) -> dict[str, Any]:
    """Every setting's value by its key: ``load_settings(**setting_values(settings))`` is ``settings`` again."""
    own = {f.name: getattr(settings, f.name) for f in dataclasses.fields(Settings) if f.name != "azure"}
    return own | {AZURE_PREFIX + f.name: getattr(settings.azure, f.name) for f in dataclasses.fields(AzureSettings)}


def _coerce(key: str, raw: object, hint: Any) -> object:
    """Turn a TOML or environment value into the setting's type, or name the key that is wrong."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        if raw in (None, ""):
            return None
        hint = next(a for a in args if a is not type(None))
    try:
        if hint is Path:
            return Path(str(raw)).expanduser()
        if hint is bool:
            if isinstance(raw, str):
                return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}[raw.lower()]
            return bool(raw)
        if typing.get_origin(hint) is tuple:
            if isinstance(raw, str):
                items: list[object] = list(raw.split(","))
            elif isinstance(raw, list | tuple):
                items = list(raw)
            else:
                raise TypeError(raw)
            return tuple(float(str(x)) for x in items if str(x).strip())
        if hint in (int, float, str):
            value = hint(raw)
            if hint is int and isinstance(raw, float) and raw != value:
                raise ValueError(raw)
            return value
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"setting {key!r} expects {getattr(hint, '__name__', hint)}, got {raw!r}", key) from exc
    raise ConfigError(f"setting {key!r} has an unsupported type", key)


def _file_values(path: Path, keys: Collection[str]) -> dict[str, object]:
    """The settings in a TOML file by key, ``x`` in its ``[azure]`` table as ``azure_x``; unknown keys are errors."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    table = data.pop("azure", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'azure' must be a table ([azure]), got {table!r}")
    for name, raw in table.items():
        key = AZURE_PREFIX + name
        if key not in keys:
            raise ConfigError(f"{path}: unknown setting {name!r} in [azure]")
        if key in data:
            raise ConfigError(f"{path}: {key!r} and {name!r} in [azure] are the same setting: keep one", key)
        data[key] = raw
    for key in data:
        if key not in keys:
            raise ConfigError(f"{path}: unknown setting {key!r}")
    return data


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Settings from defaults, ``mlops.toml`` (or ``config_file``), the environment, then ``overrides``.

    A bad value is a ConfigError that starts with where it came from: the variable, the file or the argument.
    """
    keys = setting_types()
    raw_values: dict[str, tuple[object, str]] = {}
    path = config_file or Path(os.environ.get(f"{ENV_PREFIX}CONFIG", CONFIG_FILE))
    if path.is_file():
        for key, raw in _file_values(path, keys).items():
            raw_values[key] = (raw, str(path))
    elif config_file is not None:
        raise ConfigError(f"config file {config_file} does not exist")
    for key in keys:
        variable = ENV_PREFIX + key.upper()
        if (raw := os.environ.get(variable)) is not None:
            raw_values[key] = (raw, variable)
    for key, raw in overrides.items():
        if key not in keys:
            raise ConfigError(f"argument {key}: unknown setting {key!r}", key)
        if raw is not None:
            raw_values[key] = (raw, f"argument {key}")
    try:
        values = {key: _coerce(key, raw, keys[key]) for key, (raw, _) in raw_values.items()}
        own = {key: value for key, value in values.items() if not key.startswith(AZURE_PREFIX)}
        azure = {key.removeprefix(AZURE_PREFIX): value for key, value in values.items() if key.startswith(AZURE_PREFIX)}
        return Settings(**own, azure=AzureSettings(**azure))  # type: ignore[arg-type]
    except ConfigError as exc:
        origin = raw_values.get(exc.key or "", (None, None))[1]
        if origin is None:
            raise
        raise ConfigError(f"{origin}: {exc}", exc.key) from exc


# Every default in one place: code that takes a limit or threshold as an argument defaults to these.
DEFAULTS = Settings()
