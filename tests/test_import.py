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
