"""Subprocess environments where some packages cannot be imported, exactly as if they were not installed."""

from __future__ import annotations

import os
from pathlib import Path

# Python imports ``sitecustomize`` at start-up, before any user code: the finder is in place first.
SITECUSTOMIZE = """
import sys


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
"""


def env_without(directory: Path, *packages: str) -> dict[str, str]:
    """Variables under which a Python subprocess fails to import ``packages`` (and their submodules)."""
    site = directory / f"without-{'-'.join(packages)}"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(blocked=set(packages)))
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)}
