"""diabetes-mlops: build, retrain, release and monitor a diabetes ridge regression, locally or on Azure.

The names below load their module on first use, so ``import diabetes_mlops`` stays fast and never
imports scikit-learn, pandas or the Azure SDKs by itself. ``train`` and ``evaluate`` stay functions once
their modules of the same name are imported (reach those modules with ``from diabetes_mlops.train import``).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

_API = {
    "Settings": "diabetes_mlops.config",
    "AzureSettings": "diabetes_mlops.config",
    "load_settings": "diabetes_mlops.config",
    "FEATURES": "diabetes_mlops.data",
    "TARGET": "diabetes_mlops.data",
    "load_builtin": "diabetes_mlops.data",
    "load_dataset": "diabetes_mlops.data",
    "merge_batches": "diabetes_mlops.data",
    "split": "diabetes_mlops.data",
    "fingerprint": "diabetes_mlops.data",
    "validate_frame": "diabetes_mlops.schema",
    "validate_file": "diabetes_mlops.schema",
    "train": "diabetes_mlops.train",
    "evaluate": "diabetes_mlops.evaluate",
    "gate": "diabetes_mlops.evaluate",
    "retrain": "diabetes_mlops.pipelines",
    "release": "diabetes_mlops.deploy.release",
    "rollback": "diabetes_mlops.deploy.release",
    "open_target": "diabetes_mlops.deploy.targets",
    "training_data": "diabetes_mlops.datasets",
    "open_registry": "diabetes_mlops.registry",
    "model_listing": "diabetes_mlops.display",
    "deploy": "diabetes_mlops.deploy.local",
    "undeploy": "diabetes_mlops.deploy.local",
    "endpoints": "diabetes_mlops.deploy.local",
    "smoke_test": "diabetes_mlops.deploy.smoke",
    "open_log_sink": "diabetes_mlops.monitoring.sinks",
    "drift_report": "diabetes_mlops.monitoring.drift",
    "retrain_due": "diabetes_mlops.monitoring.due",
    "ingest_file": "diabetes_mlops.ingest",
    "ingest_labels": "diabetes_mlops.ingest",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'diabetes_mlops' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


class _Package(types.ModuleType):
    """This package, whose public names are not replaced by the submodules that share them."""

    def __setattr__(self, name: str, value: object) -> None:
        # Importing ``diabetes_mlops.train`` sets the package attribute ``train`` to that module, which would
        # hide the function; ``sys.modules`` still holds the module for ``from ... import``. Subpackages (``deploy``)
        # keep their attribute, or ``import diabetes_mlops.deploy.local as m`` could not walk through it.
        if name in _API and value is sys.modules.get(f"{__name__}.{name}") and not hasattr(value, "__path__"):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
