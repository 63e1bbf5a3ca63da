"""The scoring image: an ACR build run through azure-mgmt-containerregistry, the upload to Azurite."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from azurite import ACCOUNT_KEY
from fakes import Call, FakeCredential, FakeTransport

from diabetes_mlops.azure.clients import container_registry_tasks_client
from diabetes_mlops.azure.clouds import KNOWN_CLOUDS
from diabetes_mlops.config import load_settings
from diabetes_mlops.deploy.image import (
    ImageBuildFailed,
    acr_refresh_token,
    build_with_acr,
    docker_commands,
    image_tag,
)

SUB = "00000000-0000-0000-0000-000000000004"
TASKS_API_VERSION = "2025-03-01-preview"  # ACR Tasks' own SDK, azure-mgmt-containerregistrytasks
ACR = f"/subscriptions/{SUB}/resourceGroups/rg-img/providers/Microsoft.ContainerRegistry/registries/acrmlops"


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(
        home=tmp_path, azure_subscription_id=SUB, azure_resource_group="rg-img", azure_acr_name="acrmlops"
    )


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "bundle"
    (ctx / "app").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY . /srv\n")
    (ctx / "app" / "model.skops").write_bytes(b"model")
    return ctx


def _upload_url(container) -> str:
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    name = f"{uuid.uuid4().hex}.tar.gz"
    sas = generate_blob_sas(
        "devstoreaccount1",
        container.container_name,
        name,
        account_key=ACCOUNT_KEY,
        permission=BlobSasPermissions(create=True, write=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"{container.url}/{name}?{sas}"


def _acr(upload_url: str, statuses: list[str]) -> FakeTransport:
    arm = FakeTransport()
    runs = iter(statuses)
    upload = {"uploadUrl": upload_url, "relativePath": "source/202601/abc.tar.gz"}
    arm.on("POST", rf"{ACR}/listBuildSourceUploadUrl", (200, upload))

    def schedule(call: Call):
        run = {"id": f"{ACR}/runs/ca1", "name": "ca1", "properties": {"runId": "ca1", "status": "Queued"}}
        return 200, run

    arm.on("POST", rf"{ACR}/scheduleRun", schedule)
    arm.on(
        "GET",
        rf"{ACR}/runs/ca1",
        lambda c: (200, {"id": f"{ACR}/runs/ca1", "name": "ca1", "properties": {"runId": "ca1", "status": next(runs)}}),
    )
    return arm


def test_acr_build_uploads_the_context_and_schedules_a_docker_build(settings, context, container) -> None:
    upload_url = _upload_url(container)
    arm = _acr(upload_url, ["Running", "Succeeded"])
    client = container_registry_tasks_client(settings, FakeCredential(), transport=arm)
    statuses: list[str] = []

    result = build_with_acr(settings, client, context, "diabetes", 3, poll_seconds=0, on_status=statuses.append)

    assert result.image == "acrmlops.azurecr.io/diabetes:3"
    assert result.method == "acr-build" and result.run_id == "ca1"
    assert statuses == ["Queued", "Running", "Succeeded"]
    (schedule,) = arm.find("POST", rf"{ACR}/scheduleRun")
    assert schedule.api_version == TASKS_API_VERSION
    assert schedule.body == {
        "type": "DockerBuildRequest",
        "imageNames": ["diabetes:3"],
        "isPushEnabled": True,
        "dockerFilePath": "Dockerfile",
        "platform": {"os": "Linux", "architecture": "amd64"},
        "timeout": 1800,
        "sourceLocation": "source/202601/abc.tar.gz",
    }
    # The tarball really went to the upload URL, with the context's files at its root.
    blob_name = upload_url.split("?")[0].rsplit("/", 1)[1]
    data = container.download_blob(blob_name).readall()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["Dockerfile", "app/model.skops"]
        assert tar.extractfile("Dockerfile").read().startswith(b"FROM python:3.11-slim")


def test_a_failed_acr_run_is_an_error(settings, context, container) -> None:
    arm = _acr(_upload_url(container), ["Failed"])
    client = container_registry_tasks_client(settings, FakeCredential(), transport=arm)
    with pytest.raises(ImageBuildFailed, match="ACR run ca1 ended Failed"):
        build_with_acr(settings, client, context, "diabetes", 3, poll_seconds=0)


def test_a_failed_acr_run_shows_its_error_and_the_tail_of_its_log(settings, context, container) -> None:
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    log = "".join(f"line {n}\n" for n in range(1, 101))
    container.upload_blob("logs/ca1/rawtext.log", log.encode())
    sas = generate_blob_sas(
        "devstoreaccount1",
        container.container_name,
        "logs/ca1/rawtext.log",
        account_key=ACCOUNT_KEY,
        permission=BlobSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    arm = _acr(_upload_url(container), ["Failed"])
    failed = {"runId": "ca1", "status": "Failed", "runErrorMessage": "failed during run, err: exit status 1"}
    arm.on("GET", rf"{ACR}/runs/ca1", (200, {"id": f"{ACR}/runs/ca1", "name": "ca1", "properties": failed}))
    link = f"{container.url}/logs/ca1/rawtext.log?{sas}"
    arm.on("POST", rf"{ACR}/runs/ca1/listLogSasUrl", (200, {"logLink": link}))
    client = container_registry_tasks_client(settings, FakeCredential(), transport=arm)

    with pytest.raises(ImageBuildFailed) as info:
        build_with_acr(settings, client, context, "diabetes", 3, poll_seconds=0)

    message = str(info.value)
    assert message.startswith("ACR run ca1 ended Failed: failed during run, err: exit status 1; see its log")
    lines = message.splitlines()
    assert lines[1] == "The last 40 lines of its log:" and lines[2:] == [f"line {n}" for n in range(61, 101)]
    assert sas not in message  # the link is used, never shown
    (asked,) = arm.find("POST", rf"{ACR}/runs/ca1/listLogSasUrl")
    assert asked.api_version == TASKS_API_VERSION


def test_a_failed_acr_run_whose_log_cannot_be_read_still_fails_clearly(settings, context, container) -> None:
    arm = _acr(_upload_url(container), ["Failed"])
    arm.on("POST", rf"{ACR}/runs/ca1/listLogSasUrl", (404, {"error": {"code": "NotFound", "message": "no run"}}))
    client = container_registry_tasks_client(settings, FakeCredential(), transport=arm)
    with pytest.raises(ImageBuildFailed, match=r"ended Failed; see its log .*\n\(its log could not be read: "):
        build_with_acr(settings, client, context, "diabetes", 3, poll_seconds=0)


def test_docker_commands_build_for_amd64_and_push_the_tag(tmp_path: Path) -> None:
    assert image_tag("diabetes", 7) == "diabetes:7"
    image = "acrmlops.azurecr.io/diabetes:7"
    assert docker_commands(image, tmp_path) == [
        ["docker", "build", "--platform", "linux/amd64", "--tag", image, str(tmp_path)],
        ["docker", "push", image],
    ]


def test_acr_token_exchange_sends_the_azure_token_and_never_echoes_it() -> None:
    seen: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            seen.append({"path": [self.path], **parse_qs(body)})
            ok = len(seen) == 1
            payload = json.dumps({"refresh_token": "acr-refresh"} if ok else {"error": "no"}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    credential = FakeCredential()
    try:
        assert (
            acr_refresh_token("acrmlops.azurecr.io", credential, KNOWN_CLOUDS["public"].arm_scope, base_url=base)
            == "acr-refresh"
        )
        with pytest.raises(ImageBuildFailed) as info:
            acr_refresh_token("acrmlops.azurecr.io", credential, KNOWN_CLOUDS["public"].arm_scope, base_url=base)
    finally:
        server.shutdown()
        server.server_close()
    first = seen[0]
    assert first["path"] == ["/oauth2/exchange"]
    assert first["grant_type"] == ["access_token"] and first["service"] == ["acrmlops.azurecr.io"]
    assert first["access_token"][0].count(".") == 2
    assert credential.scopes[0] == ("https://management.azure.com/.default",)
    assert first["access_token"][0] not in str(info.value)
