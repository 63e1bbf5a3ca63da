"""``import diabetes_mlops`` stays light: no Azure SDK, no scikit-learn, until something is used."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import json, sys
import {module}
heavy = ("azure", "sklearn", "pandas", "pandera", "kubernetes", "mlflow", "hypothesis")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def heavy_modules_after_import(module: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", CHECK.format(module=module)], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def test_package_import_loads_no_heavy_module() -> None:
    assert heavy_modules_after_import("diabetes_mlops") == []


def test_cli_import_loads_no_azure_or_ml_module() -> None:
    assert heavy_modules_after_import("diabetes_mlops.cli") == []


def test_lazy_api_resolves() -> None:
    import diabetes_mlops as dm

    assert dm.FEATURES[0] == "age"
    assert callable(dm.retrain) and callable(dm.load_settings)
    assert set(dm.__all__) <= set(dir(dm))


SHADOWING = """
import json, types
import diabetes_mlops as dm
import diabetes_mlops.pipelines, diabetes_mlops.deploy.local, diabetes_mlops.evaluate, diabetes_mlops.train
from diabetes_mlops.train import make_pipeline
print(json.dumps(sorted(n for n in dm.__all__ if isinstance(getattr(dm, n), types.ModuleType))))
print(isinstance(dm.train, types.FunctionType) and isinstance(dm.evaluate, types.FunctionType))
"""


def test_public_names_stay_functions_after_their_modules_are_imported() -> None:
    out = subprocess.run([sys.executable, "-c", SHADOWING], capture_output=True, text=True, check=True).stdout
    modules, functions = out.splitlines()
    # ``deploy`` names a subpackage too; it is the one public name a module may stand in for.
    assert json.loads(modules) in ([], ["deploy"]) and functions == "True"
