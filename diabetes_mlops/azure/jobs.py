"""Azure ML command jobs that run this package's own CLI, and the wait for them.

The package travels as source: its tree is uploaded to the datastore once per content hash and
``pip install``-ed by the job, so the job runs exactly the code that submitted it.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import diabetes_mlops
from diabetes_mlops import progress
from diabetes_mlops.errors import MlopsError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Environment

    from diabetes_mlops.azure.artifacts import DatastoreFiles
    from diabetes_mlops.config import Settings

TERMINAL_STATUSES = ("Completed", "Failed", "Canceled", "NotResponding")
FORWARDED_SETTINGS = ("model_name", "seed", "test_size", "alpha", "cv_alphas", "r2_floor", "min_improvement")
SOURCE_PREFIX = "diabetes-mlops/source"
INSTALL = 'pip install --quiet "${{inputs.source}}"'


class JobFailed(MlopsError):
    """An Azure ML job ended in a status other than Completed, or did not end in time."""


def source_tree() -> Path:
    """The checkout this package runs from (where ``pyproject.toml`` is)."""
    root = Path(diabetes_mlops.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise MlopsError(f"{root} is not a source checkout of diabetes-mlops: Azure jobs upload the package source")
    return root


def upload_source(files: DatastoreFiles, root: Path | None = None) -> str:
    """Upload the installable source (pyproject, README, the package's .py files); its datastore URI."""
    root = root or source_tree()
    wanted = [root / "pyproject.toml", *(p for p in [root / "README.md"] if p.is_file())]
    wanted += sorted(p for p in (root / "diabetes_mlops").rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in wanted:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    prefix = f"{SOURCE_PREFIX}/{digest.hexdigest()[:16]}"
    with tempfile.TemporaryDirectory(prefix="diabetes-mlops-source-") as tmp:
        for path in wanted:
            target = Path(tmp) / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        files.upload_dir(Path(tmp), prefix)
    return files.uri(prefix)


def environment(settings: Settings) -> Environment:
    """The job environment: the configured base image with Python 3.11 (the package needs it)."""
    from azure.ai.ml.entities import Environment

    conda = {"name": "diabetes-mlops", "channels": ["conda-forge"], "dependencies": ["python=3.11", "pip"]}
    return Environment(image=settings.azure_environment_image, conda_file=conda)


def job_environment_variables(settings: Settings, registry: bool = False) -> dict[str, str]:
    """The settings a remote step must share with this one, as ``DIABETES_MLOPS_*`` variables (no secrets)."""
    values: dict[str, Any] = {name: getattr(settings, name) for name in FORWARDED_SETTINGS}
    if registry:  # evaluate and register talk to this workspace's registry, as the compute's identity
        values.update(
            registry_backend="azureml",
            azure_subscription_id=settings.azure_subscription_id,
            azure_resource_group=settings.azure_resource_group,
            azure_workspace=settings.azure_workspace,
        )
    out = {}
    for name, value in values.items():
        if value is None or value == ():
            continue
        text = ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
        out[f"DIABETES_MLOPS_{name.upper()}"] = text
    return out


def wait_for_job(
    ml_client: MLClient,
    name: str,
    timeout: float,
    poll_seconds: float = 15.0,
    on_status: Callable[[str], None] | None = None,
) -> str:
    """Poll the job's status until it ends; cancel it and raise JobFailed when it fails or runs out of time."""
    deadline = time.monotonic() + timeout
    last = None
    with progress.task(f"Azure ML job {name}"):
        while True:
            raw = ml_client.jobs.get(name).status
            status = str(getattr(raw, "value", raw))  # the SDK may hand back a str enum
            progress.update(status)
            if status != last and on_status is not None:
                on_status(status)
            last = status
            if status == "Completed":
                return status
            if status in TERMINAL_STATUSES:
                raise JobFailed(f"Azure ML job {name} ended {status}; its logs are in the studio")
            if time.monotonic() >= deadline:
                ml_client.jobs.begin_cancel(name)
                raise JobFailed(f"Azure ML job {name} still {status} after {timeout:.0f} s: cancelled")
            time.sleep(poll_seconds)
