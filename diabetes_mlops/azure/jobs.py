"""Azure ML command jobs that run this package's own CLI, and the wait for them.

The package travels as a wheel built from the code that submits the job (a source checkout or an installed
wheel alike), uploaded to the datastore once per content hash and installed by the job with its
``azure-tracking`` extra, so every remote step runs exactly the submitting code, can reach the workspace's
registry, and logs to the MLflow run Azure ML gives the job (when the ``tracking`` setting is on).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import distribution
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import diabetes_mlops
from diabetes_mlops import progress
from diabetes_mlops.config import setting_values
from diabetes_mlops.errors import MlopsError
from diabetes_mlops.locked import lock_digest, locked_requirements

if TYPE_CHECKING:
    from azure.ai.ml import Input, MLClient, Output
    from azure.ai.ml.entities import Command, Environment

    from diabetes_mlops.azure.artifacts import DatastoreFiles
    from diabetes_mlops.config import Settings

# NotResponding is not final: Azure ML reports it while a node misses heartbeats, and the job can go on.
TERMINAL_STATUSES = ("Completed", "Failed", "Canceled")
FIRST_POLL_SECONDS = 1.0
FORWARDED_SETTINGS = (
    "model_name",
    "seed",
    "test_size",
    "alpha",
    "cv_alphas",
    "r2_floor",
    "min_improvement",
    "azure_cloud",
    "tracking",
)
DISTRIBUTION = "diabetes-mlops"
PACKAGE_PREFIX = "diabetes-mlops/packages"
JOB_EXTRAS = ("azure-tracking",)
ENVIRONMENT_NAME = "diabetes-mlops"
INSTALL = 'pip install --quiet "${{inputs.package}}[azure-tracking]"'
WHEEL_INFO = "Wheel-Version: 1.0\nGenerator: diabetes-mlops\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
# Jenkins names the job (a multibranch job's includes its branch, URL-encoded) and, in multibranch, the branch.
BUILD_CONTEXT_VARIABLES = ("JOB_NAME", "BRANCH_NAME")
NAME_CONTEXT_CHARS = 80


class JobFailed(MlopsError):
    """An Azure ML job ended in a status other than Completed, or did not end in time."""


def wheel_entries() -> tuple[str, dict[str, bytes]]:
    """The wheel's file name and contents: the package's modules plus its installed metadata (dependencies,
    extras, console script), so a checkout and an installed wheel give the same wheel."""
    dist = distribution(DISTRIBUTION)
    tag = f"{DISTRIBUTION.replace('-', '_')}-{dist.version}"
    package = Path(diabetes_mlops.__file__).resolve().parent
    entries = {
        f"{package.name}/{module.relative_to(package).as_posix()}": module.read_bytes()
        for module in sorted(package.rglob("*.py"))
        if "__pycache__" not in module.parts
    }
    # An editable install from a checkout may hold its metadata as an egg-info's PKG-INFO: the same format.
    metadata = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    entries[f"{tag}.dist-info/METADATA"] = metadata.encode()
    entries[f"{tag}.dist-info/entry_points.txt"] = (dist.read_text("entry_points.txt") or "").encode()
    entries[f"{tag}.dist-info/WHEEL"] = WHEEL_INFO.encode()
    return f"{tag}-py3-none-any.whl", entries


def unique_job_name(kind: str, run_id: str) -> str:
    """A job name no other build takes: ``diabetes-<kind>-<Jenkins job and branch>-<run id>-<6 hex>``.

    Azure ML keeps a job name for ever in its workspace, so build 1 of a second branch or Jenkins job must not
    reuse build 1's: the context names whose build it is, the random part keeps a re-run apart.
    """
    context: list[str] = []
    for variable in BUILD_CONTEXT_VARIABLES:
        value = unquote(os.environ.get(variable, ""))
        if value and not any(value in part for part in context):
            context.append(value)
    readable = re.sub(r"[^a-z0-9]+", "-", "-".join(context).lower()).strip("-")[-NAME_CONTEXT_CHARS:].strip("-")
    parts = ["diabetes", kind, readable, re.sub(r"[^a-z0-9]+", "-", run_id.lower()), secrets.token_hex(3)]
    return "-".join(part for part in parts if part)


def upload_source(files: DatastoreFiles) -> str:
    """Upload the package's wheel (what a job installs) under a content-named prefix; its datastore URI."""
    from wheel.wheelfile import WheelFile  # type: ignore[import-untyped]

    name, entries = wheel_entries()
    digest = hashlib.sha256()
    for arcname, data in entries.items():
        digest.update(arcname.encode() + b"\0" + data + b"\0")
    prefix = f"{PACKAGE_PREFIX}/{digest.hexdigest()[:16]}"
    with tempfile.TemporaryDirectory(prefix="diabetes-mlops-wheel-") as tmp:
        path = Path(tmp) / name
        with WheelFile(path, "w") as wheel:  # it writes the RECORD of hashes pip checks
            for arcname, data in entries.items():
                wheel.writestr(arcname, data)
        with open(path, "rb") as fh:
            files.container.upload_blob(f"{prefix}/{name}", fh, overwrite=True)
    return files.uri(prefix) + name


def environment(settings: Settings) -> Environment:
    """The registered environment every step runs in: the base image, this Python's minor version, and the
    package's requirements pinned to the versions installed here (``locked_requirements``).

    Its version is their content hash: the same lock is the same environment version in the workspace (made
    once, then reused), and a new lock a new version, so a model is trained, evaluated and registered with the
    libraries its build tested, and its scoring image pins the same ones.
    """
    from azure.ai.ml.entities import Environment

    pins = locked_requirements(JOB_EXTRAS)
    python = ".".join(platform.python_version_tuple()[:2])
    conda = {
        "name": ENVIRONMENT_NAME,
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", "pip", {"pip": pins}],
    }
    version = lock_digest(pins, python, settings.azure.environment_image)
    return Environment(
        name=ENVIRONMENT_NAME,
        version=version,
        image=settings.azure.environment_image,
        conda_file=conda,
        description="diabetes-mlops: the package's requirements as its build had them",
        tags={"created_by": "diabetes-mlops"},
    )


def job_environment_variables(settings: Settings, registry: bool = False) -> dict[str, str]:
    """The settings a remote step must share with this one, as ``DIABETES_MLOPS_*`` variables (no secrets)."""
    from diabetes_mlops.azure.clients import with_workspace

    settings = with_workspace(settings)
    every = setting_values(settings)
    values: dict[str, Any] = {key: every[key] for key in FORWARDED_SETTINGS}
    if registry:  # evaluate and register talk to this workspace's registry, as the compute's identity
        values.update(
            registry_backend="azureml",
            azure_subscription_id=settings.azure.subscription_id,
            azure_resource_group=settings.azure.resource_group,
            azure_workspace=settings.azure.workspace,
        )
    out = {}
    for name, value in values.items():
        if value is None or value == ():
            continue
        text = ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
        out[f"DIABETES_MLOPS_{name.upper()}"] = text
    return out


def kit_command(
    settings: Settings,
    name: str,
    display_name: str,
    command_line: str,
    inputs: dict[str, Input],
    outputs: dict[str, Output],
    tags: dict[str, str],
) -> Command:
    """A command job of the kit's: its environment, the settings it shares, the cluster and the experiment."""
    from azure.ai.ml import command

    return command(
        name=name,
        display_name=display_name,
        experiment_name=settings.azure.experiment,
        command=command_line,
        inputs=inputs,
        outputs=outputs,
        environment=environment(settings),
        environment_variables=job_environment_variables(settings),
        compute=settings.azure.compute_name,
        tags={**tags, "created_by": "diabetes-mlops"},
    )


def wait_for_job(
    ml_client: MLClient,
    name: str,
    timeout: float,
    poll_seconds: float = 15.0,
    on_status: Callable[[str], None] | None = None,
    studio_url: str | None = None,
) -> str:
    """Poll the job's status until it ends; cancel it and raise JobFailed when it fails or runs out of time.

    Polls come after 1, 2, 4 and 8 s, then every ``poll_seconds``: a job of seconds is seen done in
    seconds, one of an hour costs a call every ``poll_seconds``. The job's studio page, when given, is the
    first line in the log and part of every failure.
    """
    deadline = time.monotonic() + timeout
    last = None
    delay = min(FIRST_POLL_SECONDS, poll_seconds)
    where = f"its logs: {studio_url}" if studio_url else "its logs are in the studio"
    with progress.task(f"Azure ML job {name}"):
        if studio_url:
            progress.update(f"studio {studio_url}")
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
                raise JobFailed(f"Azure ML job {name} ended {status}; {where}")
            if time.monotonic() >= deadline:
                ml_client.jobs.begin_cancel(name)
                raise JobFailed(f"Azure ML job {name} still {status} after {timeout:.0f} s: cancelled")
            time.sleep(delay)
            delay = min(2 * delay, poll_seconds)
