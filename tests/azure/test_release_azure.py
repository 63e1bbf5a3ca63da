"""The release on the Azure target, through the real SDKs and recording transports: the qa stage builds the
image in ACR and deploys it to ACI by digest; the production stage deploys that digest to AKS and moves the
alias. Both smoke tests reach a real scoring server on loopback through a proxy that stands for the services'
public addresses."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_kube import FakeKube
from fakes import Call, FakeCredential
from loopback_proxy import LoopbackProxy
from test_aci import SUB, FakeAci
from test_image import _upload_url

from diabetes_mlops.config import Settings, load_settings
from diabetes_mlops.deploy.release import ReleaseFailed, release
from diabetes_mlops.deploy.targets.azure import AzureTarget
from diabetes_mlops.registry.local import LocalRegistry
from tests.conftest import free_port
from tests.serving.conftest import register_model, wait_ready

RG = f"/subscriptions/{SUB}/resourceGroups/rg-qa/providers"  # where FakeAci keeps its groups
ACR = f"{RG}/Microsoft.ContainerRegistry/registries/acrmlops"
CLUSTER = f"{RG}/Microsoft.ContainerService/managedClusters/aks-prod"
KEY = "release-key-789"
DIGEST = "sha256:" + "ab" * 32
LB_IP = "20.50.60.70"


class FakeAcr:
    """ACR's build runs (ARM) and its data plane, where a tag exists once a build run pushed it."""

    def __init__(self, transport: Any, upload_url: str) -> None:
        self.pushed: dict[str, str] = {}
        upload = {"uploadUrl": upload_url, "relativePath": "source/202612/ctx.tar.gz"}
        transport.on("POST", rf"{ACR}/listBuildSourceUploadUrl", (200, upload))
        transport.on("POST", rf"{ACR}/scheduleRun", self._schedule)
        transport.on("GET", rf"{ACR}/runs/cb1", lambda c: (200, self._run("Succeeded")))
        transport.on("POST", r"/oauth2/exchange", (200, {"refresh_token": "acr-refresh"}))
        transport.on("POST", r"/oauth2/token", (200, {"access_token": "acr-access"}))
        transport.on("GET", r"/acr/v1/(?P<repo>[^/]+)/_tags/(?P<tag>[^/]+)", self._tag)

    @staticmethod
    def _run(status: str) -> dict[str, Any]:
        return {"id": f"{ACR}/runs/cb1", "name": "cb1", "properties": {"runId": "cb1", "status": status}}

    def _schedule(self, call: Call) -> tuple[int, Any]:
        for image in call.body["imageNames"]:
            self.pushed[image] = DIGEST
        return 200, self._run("Queued")

    def _tag(self, call: Call) -> tuple[int, Any] | tuple[int, Any, dict[str, str]]:
        repo, tag = call.path.split("/")[3], call.path.split("/")[5]
        if call.headers.get("Authorization") != "Bearer acr-access":
            realm = 'realm="https://acrmlops.azurecr.io/oauth2/token",service="acrmlops.azurecr.io"'
            challenge = f'Bearer {realm},scope="repository:{repo}:metadata_read"'
            return 401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": challenge}
        if f"{repo}:{tag}" not in self.pushed:
            return 404, {"errors": [{"code": "TAG_UNKNOWN", "message": f"{repo}:{tag} is not known"}]}
        when = "2026-12-01T00:00:00Z"
        attributes = {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True, "listEnabled": True}
        tag_props = {"name": tag, "digest": self.pushed[f"{repo}:{tag}"], "createdTime": when, "lastUpdateTime": when}
        return 200, {
            "registry": "acrmlops.azurecr.io",
            "imageName": repo,
            "tag": {**tag_props, "signed": False, "changeableAttributes": attributes},
        }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        home=tmp_path / "home",
        azure_subscription_id=SUB,
        azure_resource_group="rg-qa",
        azure_location="westeurope",
        azure_acr_name="acrmlops",
        azure_aks_cluster="aks-prod",
        azure_deploy_timeout=60.0,
        scoring_key=KEY,
        smoke_timeout=30.0,
        azure_check_access=False,  # this fake ARM has no workspace and no role assignments (tests/simazure has)
    )


@pytest.fixture
def scoring_server(settings: Settings) -> Iterator[int]:
    """What the containers run: the scoring service of version 1 with the scoring key, on a loopback port."""
    version = register_model(settings)
    port = free_port()
    env = {**os.environ, "DIABETES_MLOPS_HOME": str(settings.home), "DIABETES_MLOPS_SCORING_KEY": KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "diabetes_mlops", "serve", "--model", str(version), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_the_qa_stage_publishes_before_aci_is_asked_and_production_runs_the_same_digest(
    settings: Settings, scoring_server: int, container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aci = FakeAci()
    arm = aci.transport
    acr = FakeAcr(arm, _upload_url(container))
    with FakeKube() as kube, LoopbackProxy() as proxy:
        kube.rollout_polls = 0
        value = base64.b64encode(kube.kubeconfig().encode()).decode()
        arm.on("POST", rf"{CLUSTER}/listClusterUserCredential", (200, {"kubeconfigs": [{"name": "u", "value": value}]}))
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        target = AzureTarget(settings, FakeCredential(), transport=arm, polling_interval=0)
        run_dir = tmp_path / "run"

        with pytest.raises(ReleaseFailed, match=r"QA .*smoke test failed at http://diabetes-qa-"):
            impatient = dataclasses.replace(settings, smoke_timeout=1.0)
            release(impatient, 1, run_dir, stage="qa", target=target)  # no service behind the address yet
        label = next(iter(aci.groups.values()))["properties"]["ipAddress"]["fqdn"]
        proxy.routes.update({f"{label}:8000": scoring_server, f"{LB_IP}:80": scoring_server})

        qa = release(settings, 1, run_dir, stage="qa", target=target)
        image = f"acrmlops.azurecr.io/diabetes@{DIGEST}"
        assert qa.released and qa.qa is not None and qa.qa.image == image
        assert qa.qa.url == f"http://{label}:8000"
        order = [
            (c.method, c.path.rsplit("/", 1)[-1]) for c in arm.calls if c.path.endswith(("scheduleRun", "/1", "qa"))
        ]
        last_build = max(i for i, step in enumerate(order) if step == ("POST", "scheduleRun"))
        tag_read = order.index(("GET", "1"), last_build)
        put = order.index(("PUT", "diabetes-qa"), last_build)
        assert last_build < tag_read < put  # built and resolved to a digest before ACI was asked for it
        group = aci.groups["diabetes-qa"]["properties"]["containers"][0]["properties"]
        assert group["image"] == image
        assert LocalRegistry(settings.registry_dir).aliases("diabetes").get("production") is None
        assert kube.objects == {}  # production not touched by the qa stage

        production = release(settings, run_dir=run_dir, stage="production", target=target)
        assert production.released and production.production is not None
        assert production.production.url == f"http://{LB_IP}:80"
        deployment = kube.objects["/apis/apps/v1/namespaces/diabetes/deployments/diabetes-scoring"]
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
        assert LocalRegistry(settings.registry_dir).aliases("diabetes")["production"] == 1
        saved = json.loads((run_dir / "release-production.json").read_text())
        assert saved["target"] == "azure" and saved["production"]["image"] == image
        assert KEY not in json.dumps(saved)

        again = release(settings, stage="production", target=target)
        assert not again.released and "already serves diabetes:1" in again.reason
        assert acr.pushed == {"diabetes:1": DIGEST}
