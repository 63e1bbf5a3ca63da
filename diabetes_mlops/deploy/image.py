"""The scoring image in Azure Container Registry, tagged ``<model-name>:<version>`` and deployed by digest.

With a working ``docker`` on the agent the bundle is built and pushed locally (logged in with an ACR token
exchanged for the agent's Azure identity); otherwise ACR builds it itself: the build context is uploaded
as a tarball to the upload URL ACR hands out, and a build run is scheduled and waited for (a failed run's error
carries the last lines of its log, read from the link ACR hands out for it). Either way the
registry is then asked which digest the tag names, and that immutable reference is what gets deployed: a tag
pushed again later cannot change what a deployment runs.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diabetes_mlops import progress
from diabetes_mlops.azure.clients import cloud, require
from diabetes_mlops.deploy.targets.base import LOG_TAIL_LINES, log_tail
from diabetes_mlops.errors import MlopsError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.containerregistrytasks import ContainerRegistryTasksMgmtClient

    from diabetes_mlops.config import Settings

ACR_TOKEN_USER = "00000000-0000-0000-0000-000000000000"  # the user name ACR expects with an exchanged token
RUN_DONE = ("Succeeded", "Failed", "Canceled", "Error", "Timeout")


class ImageBuildFailed(MlopsError):
    """The image could not be built or pushed."""


@dataclass(frozen=True)
class ImageResult:
    """Where the image is (by tag and by digest), and how it got there (``docker``, or ``acr-build`` and its run)."""

    image: str
    method: str
    run_id: str | None = None
    digest_ref: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def login_server(settings: Settings) -> str:
    """The registry's host name in the configured cloud (``<acr>.azurecr.io`` in the public one)."""
    return cloud(settings).acr_login_server(require(settings.azure, "acr_name"))


def image_tag(name: str, version: int) -> str:
    """The repository and tag inside the registry: ``<model-name>:<version>``."""
    return f"{name}:{version}"


def docker_works() -> bool:
    """True when a ``docker`` client is installed and reaches an engine."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0


def docker_commands(image: str, context: Path) -> list[list[str]]:
    """The commands that build the bundle for the service's platform and push it."""
    return [
        ["docker", "build", "--platform", "linux/amd64", "--tag", image, str(context)],
        ["docker", "push", image],
    ]


def acr_refresh_token(server: str, credential: TokenCredential, scope: str, base_url: str | None = None) -> str:
    """Exchange the identity's Azure token (for ARM's ``scope``) for an ACR refresh token, as ``az acr login``."""
    aad = credential.get_token(scope).token
    form = urllib.parse.urlencode({"grant_type": "access_token", "service": server, "access_token": aad})
    request = urllib.request.Request(f"{base_url or 'https://' + server}/oauth2/exchange", data=form.encode())
    try:
        # A new opener reads the proxy variables now; urlopen's is fixed at the process's first call.
        with urllib.request.build_opener().open(request, timeout=30) as response:
            return json.loads(response.read())["refresh_token"]
    except (OSError, KeyError, ValueError) as exc:
        raise ImageBuildFailed(f"could not get a token for {server}: {type(exc).__name__}") from None


def push_with_docker(
    settings: Settings, context: Path, name: str, version: int, credential: TokenCredential
) -> ImageResult:
    server = login_server(settings)
    image = f"{server}/{image_tag(name, version)}"
    token = acr_refresh_token(server, credential, cloud(settings).arm_scope)
    login = ["docker", "login", server, "--username", ACR_TOKEN_USER, "--password-stdin"]
    for args, stdin in [(login, token), *((c, None) for c in docker_commands(image, context))]:
        done = subprocess.run(args, input=stdin, text=True, capture_output=True, check=False)
        if done.returncode != 0:  # the token went in on stdin, so stderr cannot contain it
            raise ImageBuildFailed(f"{' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
    return ImageResult(image, "docker")


def context_tarball(context: Path) -> bytes:
    """The build context as a gzipped tar, files at its root, as ACR's source upload expects."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(Path(context).rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(context).as_posix())
    return buffer.getvalue()


def run_log_tail(
    client: ContainerRegistryTasksMgmtClient, group: str, registry: str, run_id: str, lines: int = LOG_TAIL_LINES
) -> str:
    """The last ``lines`` of an ACR run's log (from the SAS link ACR hands out, never shown), as a message's tail;
    a note instead when it cannot be read. A build log of the bundle holds no secrets, so nothing is stripped."""
    from azure.storage.blob import BlobClient

    try:
        link = client.runs.get_log_sas_url(group, registry, run_id).log_link
        if not link:
            return "\n(the run has no log)"
        text = BlobClient.from_blob_url(link).download_blob().readall().decode("utf-8", "replace")
    except Exception as exc:  # the build failed already: its log is help, not a second failure
        return f"\n(its log could not be read: {type(exc).__name__})"
    return log_tail(text, lines) or "\n(the run's log is empty)"


def _status(run: Any) -> str:
    """A run's status as ACR writes it (``Succeeded``): the SDK's enum member's value, not its name."""
    return str(getattr(run.status, "value", run.status))


def build_with_acr(
    settings: Settings,
    client: ContainerRegistryTasksMgmtClient,
    context: Path,
    name: str,
    version: int,
    timeout: float = 1800.0,
    poll_seconds: float = 10.0,
    on_status: Callable[[str], None] | None = None,
) -> ImageResult:
    """Upload the context, schedule an ACR build-and-push run, wait for it."""
    from azure.mgmt.containerregistrytasks.models import DockerBuildRequest, PlatformProperties
    from azure.storage.blob import BlobClient

    group, registry = require(settings.azure, "resource_group"), require(settings.azure, "acr_name")
    upload = client.registries.get_build_source_upload_url(group, registry)
    if not upload.upload_url:
        raise ImageBuildFailed(f"ACR {registry} gave no source upload URL")
    # The upload URL carries a SAS token: it is used, never printed.
    BlobClient.from_blob_url(upload.upload_url).upload_blob(context_tarball(context), overwrite=True)
    request = DockerBuildRequest(
        source_location=upload.relative_path,
        docker_file_path="Dockerfile",
        image_names=[image_tag(name, version)],
        is_push_enabled=True,
        platform=PlatformProperties(os="Linux", architecture="amd64"),
        timeout=int(timeout),
    )
    run = client.registries.schedule_run(group, registry, request)
    deadline = time.monotonic() + timeout
    status, last = _status(run), None
    with progress.task(f"ACR build {run.run_id}"):
        while status not in RUN_DONE:
            progress.update(status)
            if status != last and on_status is not None:
                on_status(status)
            last = status
            if time.monotonic() >= deadline:
                raise ImageBuildFailed(f"ACR run {run.run_id} still {status} after {timeout:.0f} s")
            time.sleep(poll_seconds)
            run = client.runs.get(group, registry, run.run_id)
            status = _status(run)
    if on_status is not None:
        on_status(status)
    if status != "Succeeded":
        reason = f": {run.run_error_message}" if run.run_error_message else ""
        raise ImageBuildFailed(
            f"ACR run {run.run_id} ended {status}{reason}; see its log in the registry's Runs"
            + run_log_tail(client, group, registry, str(run.run_id))
        )
    return ImageResult(f"{login_server(settings)}/{image_tag(name, version)}", "acr-build", run.run_id)


def image_by_digest(
    settings: Settings, name: str, version: int, credential: TokenCredential, **client_kwargs: Any
) -> str | None:
    """``<server>/<name>@sha256:...``: the image the tag ``<name>:<version>`` names now; None when there is none."""
    from azure.core.exceptions import ResourceNotFoundError

    from diabetes_mlops.azure.clients import container_registry_data_client

    client = container_registry_data_client(settings, credential, **client_kwargs)
    try:
        digest = client.get_tag_properties(name, str(version)).digest
    except ResourceNotFoundError:
        return None
    return f"{login_server(settings)}/{name}@{digest}"


def publish_image(
    settings: Settings,
    context: Path,
    name: str,
    version: int,
    credential: TokenCredential | None = None,
    **client_kwargs: Any,
) -> ImageResult:
    """Build and push the bundle in ``context`` (with docker when it works here, else as an ACR build); by digest."""
    from diabetes_mlops.azure.clients import container_registry_tasks_client, default_credential

    credential = credential or default_credential(settings)
    if docker_works():
        built = push_with_docker(settings, context, name, version, credential)
    else:
        client = container_registry_tasks_client(settings, credential, **client_kwargs)
        built = build_with_acr(settings, client, context, name, version)
    digest_ref = image_by_digest(settings, name, version, credential, **client_kwargs)
    if digest_ref is None:
        raise ImageBuildFailed(f"{built.image} was pushed, but the registry does not list it")
    return replace(built, digest_ref=digest_ref)
