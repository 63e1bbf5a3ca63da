"""The scoring bundle: a Docker build context with the model, the code, pinned requirements and a Dockerfile."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import diabetes_mlops
from diabetes_mlops.artifacts import verify_version_files
from diabetes_mlops.deploy.environments import IMAGE_PYTHON, require_same_environment
from diabetes_mlops.runs import RunDir

if TYPE_CHECKING:
    from diabetes_mlops.config import Settings
    from diabetes_mlops.registry import Registry
    from diabetes_mlops.registry.base import VersionRef

# What the service imports at run time: training, plotting and validation libraries stay out of the image.
SERVING_REQUIREMENTS = (
    "click",
    "filelock",
    "numpy",
    "orjson",
    "prometheus-client",
    "pybase64",
    "pysimdjson",
    "scikit-learn",
    "scipy",
    "skops",
    "starlette",
    "uvicorn[standard]",
)
# What a service in Azure also needs: the Blob log store, its managed identity, Application Insights.
AZURE_SERVING_REQUIREMENTS = (
    "azure-identity",
    "azure-monitor-opentelemetry",
    "azure-storage-blob",
    "opentelemetry-instrumentation-asgi",
)
SERVICE_PORT = 8000
SERVE_COMMAND = ["python", "-m", "diabetes_mlops", "serve", "--model-dir", "model"]
MANIFEST = "bundle.json"

ENTRY_SCRIPT = '''"""Azure ML entry script (init/run) of the diabetes-mlops scoring service."""

import pathlib
import sys

# The package travels inside the bundle, beside this file.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from diabetes_mlops.serving.score import init, run  # noqa: E402

__all__ = ["init", "run"]
'''

DOCKERFILE = """# syntax=docker/dockerfile:1
FROM python:{python}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \\
    DIABETES_MLOPS_HOST=0.0.0.0 PORT={port} DIABETES_MLOPS_HOME=/home/app/.mlops
RUN useradd --create-home --uid 10001 app
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=app:app . .
USER app
EXPOSE {port}
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \\
    CMD ["python", "-m", "diabetes_mlops.deploy.healthcheck"]
CMD {command}
"""


def bundle_dir(settings: Settings, name: str, version: int, run_dir: Path | None = None) -> Path:
    """Where a version's scoring bundle is written: in the run directory when there is one."""
    return RunDir(run_dir).bundle if run_dir is not None else settings.home / "bundles" / f"{name}-{version}"


def pinned_requirements(azure: bool = False, trained_with: dict[str, str] | None = None) -> list[str]:
    """The serving requirements (with ``azure``, those of a service in Azure too) pinned to the versions the
    model was trained with (its ``library_versions``), the others to the versions installed here."""
    trained_with = trained_with or {}
    names = SERVING_REQUIREMENTS + (AZURE_SERVING_REQUIREMENTS if azure else ())
    pins = []
    for name in names:
        bare = name.split("[")[0]
        pins.append(f"{name}=={trained_with.get(bare) or version(bare)}")
    return pins


def write_bundle(registry: Registry, name: str, ref: VersionRef, out_dir: Path, azure: bool = False) -> Path:
    """Write the build context of model ``name`` at ``ref`` into ``out_dir`` (replaced if it exists).

    With ``azure`` the image also carries the Azure SDKs its scoring log and telemetry use there. A model file
    (or affine map) whose sha256 differs from the registered one is refused before anything is written.
    """
    entry = registry.get(name, ref)
    requirements = pinned_requirements(azure, entry.library_versions)
    pinned = (pin.partition("==") for pin in requirements)
    image = {"python": IMAGE_PYTHON, **{name.split("[")[0]: pinned_version for name, _, pinned_version in pinned}}
    require_same_environment(entry.name, entry.version, entry.library_versions, image, "the scoring image")
    source = registry.version_dir(name, entry.version)
    verify_version_files(source, entry, use="package")
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    shutil.copytree(source, out_dir / "model")
    package = Path(diabetes_mlops.__file__).parent
    shutil.copytree(package, out_dir / "diabetes_mlops", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (out_dir / "score.py").write_text(ENTRY_SCRIPT)
    (out_dir / "requirements.txt").write_text("\n".join(requirements) + "\n")
    dockerfile = DOCKERFILE.format(python=IMAGE_PYTHON, port=SERVICE_PORT, command=json.dumps(SERVE_COMMAND))
    (out_dir / "Dockerfile").write_text(dockerfile)
    (out_dir / ".dockerignore").write_text("**/__pycache__\n*.pyc\n")
    manifest = {"model": entry.to_dict(), "package_version": diabetes_mlops.__version__, "port": SERVICE_PORT}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return out_dir
