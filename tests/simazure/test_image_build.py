"""The simulated ACR build executes the Dockerfile step by step: a failing step fails the build (and the ACR run,
and the kit's publish) with its log; the image is what the steps made, and a container runs it."""

from __future__ import annotations

import dataclasses
import io
import tarfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from diabetes_mlops.azure.clients import container_registry_tasks_client
from diabetes_mlops.config import Settings
from diabetes_mlops.deploy import bundle
from diabetes_mlops.deploy.image import ImageBuildFailed
from diabetes_mlops.deploy.targets.azure import AzureTarget
from diabetes_mlops.deploy.targets.base import Published
from diabetes_mlops.registry.local import LocalRegistry
from tests.serving.conftest import register_model
from tests.simazure.containers import ImageBuildError, Images, Runtime
from tests.simazure.runner import Venvs
from tests.simazure.service import ACR_NAME, WHEELHOUSE, SimAzure

SERVER = f"{ACR_NAME}.azurecr.simazure.test"

APP = """# syntax=docker/dockerfile:1
ARG PY=3.11
FROM python:${PY}-slim
ARG GREETING=hello
ENV APP_HOME=/srv/app DATA=/data \\
    MSG="$GREETING world"
RUN useradd --create-home --uid 10001 app
WORKDIR $APP_HOME
COPY app/ ./
COPY --chown=app:app app/run.py owned/
RUN echo "msg=$MSG" && mkdir -p "$DATA" && echo made > "$DATA/made.txt"
USER app
EXPOSE 8000
CMD ["python", "run.py"]
"""
RUN_PY = """import os, pathlib
pathlib.Path(os.environ["HOME"], "ok.txt").write_text("home")
pathlib.Path("owned", "ok.txt").write_text("owned")
pathlib.Path("new.txt").write_text("the workdir is root's")
print("ran as", os.environ["HOME"])
"""


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> Venvs:
    """Venvs shared by this module's builds (the base image's venv is made once)."""
    return Venvs(tmp_path_factory.mktemp("venvs"), WHEELHOUSE)


@pytest.fixture
def images(venvs: Venvs, tmp_path: Path) -> Images:
    return Images(tmp_path / "images", venvs, {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE)})


def context(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    """A gzipped build context: the Dockerfile and ``files``."""
    files = {"app/run.py": RUN_PY, "app/cache.pyc": "x", ".dockerignore": "**/*.pyc\n", **(files or {})}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in {"Dockerfile": dockerfile, **files}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / f"context-{len(list(tmp_path.glob('context-*')))}.tar.gz"
    path.write_bytes(buffer.getvalue())
    return path


def failed_build(images: Images, tarball: Path) -> ImageBuildError:
    with pytest.raises(ImageBuildError) as info:
        images.build(["r.test/app:1"], tarball)
    assert "r.test/app:1" not in images.tags
    return info.value


def test_the_steps_run_in_order_and_make_the_image(images: Images, tmp_path: Path) -> None:
    digest, log = images.build(["r.test/app:1"], context(tmp_path, APP))

    steps = [line for line in log.splitlines() if line.startswith("Step ")]
    assert len(steps) == 12 and steps[0] == "Step 1/12 : ARG PY=3.11" and steps[-1].startswith("Step 12/12 : CMD")
    assert "msg=hello world" in log  # the RUN's output, its ARG and ENV substituted
    assert images.tags["r.test/app:1"] == digest
    image = images.pull("r.test/app:1")
    root = image / "rootfs"
    assert (root / "srv/app/run.py").read_text() == RUN_PY
    assert not (root / "srv/app/cache.pyc").exists()  # .dockerignore
    assert (root / "data/made.txt").read_text() == "made\n"  # the RUN wrote under the image's root
    assert (root / "home/app").is_dir()
    config = images.config(image)
    assert config.user == "app" and config.users["app"][:2] == [10001, 10001]
    assert config.workdir == "/srv/app" and config.cmd == ["python", "run.py"] and config.exposed == ["8000/tcp"]
    assert config.env["MSG"] == "hello world" and "GREETING" not in config.env  # an ARG is the build's only
    assert not config.writable("/srv/app") and config.writable("/srv/app/owned") and config.writable("/home/app")
    # The same context is the same image; another build argument is another.
    assert images.build(["r.test/app:2"], context(tmp_path, APP))[0] == digest
    assert images.build(["r.test/app:3"], context(tmp_path, APP), build_args={"GREETING": "hi"})[0] != digest


def test_a_container_runs_the_image_as_its_user_and_writes_it_could_not_make_are_reported(
    images: Images, venvs: Venvs, tmp_path: Path
) -> None:
    images.build(["r.test/app:1"], context(tmp_path, APP))
    runtime = Runtime(images, venvs, tmp_path / "containers", {})

    container = runtime.start("r.test/app:1", {})

    assert container.process.wait(timeout=60) == 0, (container.root / "container.log").read_text()
    assert container.fs is not None and container.user == "app"
    assert (container.fs / "home/app/ok.txt").read_text() == "home"  # HOME is the USER's, under the container
    assert f"ran as {container.fs / 'home/app'}" in (container.root / "container.log").read_text()
    # Only the write into the root-owned WORKDIR is one docker would have refused the app user.
    assert container.denied_writes() == ["/srv/app/new.txt"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("COPY app/ ./", "COPY app/ missing.txt ./"), "COPY failed: file not found in build context"),
        (("USER app", "USER ghost"), "unable to find user ghost: no matching entries in passwd file"),
        (("COPY --chown=app:app", "COPY --chown=ghost:ghost"), "can't find uid for user ghost"),
        (("FROM python:${PY}-slim", "FROM python:2.7-slim"), "failed to resolve source metadata"),
        (("FROM python:${PY}-slim", "FROM ubuntu:24.04"), "failed to resolve source metadata"),
        (("EXPOSE 8000", "ENTRYPOINT python"), "ENTRYPOINT is not supported by the simulated ACR build"),
        (("EXPOSE 8000", "FROBNICATE 1"), "unknown instruction: FROBNICATE"),
        (('echo "msg=$MSG"', "apt-get install -y gcc"), "returned a non-zero code: 127"),
        (('echo "msg=$MSG"', "chown app /srv"), "chown: the simulated ACR build runs useradd"),
    ],
)
def test_a_step_the_image_cannot_take_fails_the_build_naming_it(
    images: Images, tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    assert change[0] in APP
    error = failed_build(images, context(tmp_path, APP.replace(*change, 1)))
    assert expected in str(error)
    assert error.log.rstrip().splitlines()[-1] == str(error)  # the log ends with why
    assert "missing.txt" in str(error) or "COPY app/ missing" not in change[1]


def test_a_failing_run_stops_the_build_with_its_output(images: Images, tmp_path: Path) -> None:
    dockerfile = APP.replace('echo "msg=$MSG"', 'echo "about to fail" && ls /nonexistent-dir-simazure')
    error = failed_build(images, context(tmp_path, dockerfile))
    assert "returned a non-zero code: 2" in str(error)
    log = error.log
    assert "about to fail" in log and "/nonexistent-dir-simazure" in log.split("about to fail")[1]
    assert "Step 9/12 : RUN echo" in log and "Step 10/12" not in log  # nothing ran after it


def test_pip_install_resolves_from_the_wheelhouse_only(images: Images, tmp_path: Path) -> None:
    files = {"requirements.txt": "nosuchpkg-simazure==1.0\n"}
    dockerfile = APP.replace(
        "WORKDIR $APP_HOME\n", "WORKDIR $APP_HOME\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n"
    )
    error = failed_build(images, context(tmp_path, dockerfile, files))
    assert "The command '/bin/sh -c pip install -r requirements.txt' returned a non-zero code: 1" in str(error)
    assert "nosuchpkg-simazure" in error.log  # pip's (uv's) own message


def last_run(simazure: SimAzure, settings: Settings) -> tuple[Any, str]:
    """The registry's last run and its log, read through the SDK as the kit reads it (listLogSasUrl's link)."""
    from azure.storage.blob import BlobClient

    client = container_registry_tasks_client(settings)
    group, registry = settings.azure.resource_group, settings.azure.acr_name
    run = client.runs.get(group, registry, max(simazure.registries.runs, key=lambda r: int(r[2:])))
    link = client.runs.get_log_sas_url(group, registry, run.run_id).log_link
    assert "sig=" in link and f"/logs/{run.run_id}/rawtext.log" in link
    return run, BlobClient.from_blob_url(link).download_blob().readall().decode()


@pytest.fixture
def publish(simazure: SimAzure, azure_settings: Settings, tmp_path: Path) -> Callable[[], Published]:
    def run() -> Published:
        version = register_model(azure_settings)
        registry = LocalRegistry(azure_settings.registry_dir)
        return AzureTarget(azure_settings).publish(registry, azure_settings.model_name, version, tmp_path / "bundle")

    return run


def test_a_requirement_the_index_lacks_fails_the_acr_run_and_the_kit_shows_pip(
    simazure: SimAzure, azure_settings: Settings, publish: Callable[[], Published], monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = bundle.pinned_requirements
    monkeypatch.setattr(bundle, "pinned_requirements", lambda *a, **k: [*pinned(*a, **k), "nosuchpkg-simazure==1.0"])

    with pytest.raises(ImageBuildFailed) as info:
        publish()

    message = str(info.value)
    assert "ended Failed: failed during run, err: The command '/bin/sh -c pip install -r requirements.txt'" in message
    assert "Step 6/11 : RUN pip install -r requirements.txt" in message
    assert "nosuchpkg-simazure" in message.split("Step 6/11")[1]  # pip's message, from the run's log
    assert "sig=" not in message  # the log's SAS link is used, never shown
    run, log = last_run(simazure, azure_settings)
    assert run.status == "Failed" and run.run_error_message in message
    assert "Step 7/11" not in log and log.rstrip().endswith("returned a non-zero code: 1")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("COPY requirements.txt .", "COPY requirement.txt ."), "COPY failed: file not found in build context"),
        (("USER app", "USER service"), "unable to find user service: no matching entries in passwd file"),
    ],
)
def test_a_bundle_fault_fails_the_kits_publish_with_the_step(
    simazure: SimAzure,
    publish: Callable[[], Published],
    monkeypatch: pytest.MonkeyPatch,
    change: tuple[str, str],
    expected: str,
) -> None:
    assert change[0] in bundle.DOCKERFILE
    monkeypatch.setattr(bundle, "DOCKERFILE", bundle.DOCKERFILE.replace(*change))

    with pytest.raises(ImageBuildFailed) as info:
        publish()

    message = str(info.value)
    assert f"failed during run, err: {expected}" in message  # runErrorMessage
    assert f"Step {5 if 'COPY' in change[0] else 8}/11 : {change[1]}" in message  # the failing step, in the log
    assert change[1].split()[1] in message


def test_the_kits_bundle_runs_as_app_and_writes_only_what_app_owns(
    simazure: SimAzure, azure_settings: Settings, publish: Callable[[], Published]
) -> None:
    from diabetes_mlops.deploy.aci import deploy_aci
    from diabetes_mlops.deploy.smoke import smoke_test
    from tests.simazure.test_containers import pull_credential

    published = publish()
    assert published.image is not None
    digest = published.image
    config = simazure.registries.images.config(simazure.registries.images.pull(digest))
    assert config.user == "app" and config.workdir == "/app" and config.healthcheck is not None
    assert config.writable("/app/model") and config.writable("/home/app/.mlops") and not config.writable("/app")
    settings = dataclasses.replace(
        azure_settings, azure=dataclasses.replace(azure_settings.azure, aci_dns_label="diabetes-build-sim")
    )
    from diabetes_mlops.azure.clients import container_instance_client

    endpoint = deploy_aci(settings, container_instance_client(settings), published, pull_credential(simazure, settings))
    checked = smoke_test(endpoint.url, settings.scoring_key, published.version, timeout=120)
    assert checked.ok, checked.reason
    container = simazure.container_groups.running[settings.azure.aci_name]
    assert container.user == "app" and container.fs is not None
    assert container.process.poll() is None
    time.sleep(0.5)
    assert container.denied_writes() == []
    with urllib.request.urlopen(f"http://127.0.0.1:{container.port}/ready", timeout=5) as response:
        assert response.status == 200
