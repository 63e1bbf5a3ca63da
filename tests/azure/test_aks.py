"""Production on AKS: the real azure-mgmt-containerservice and kubernetes clients against fakes on loopback."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fake_kube import FakeKube
from fakes import FakeCredential, FakeTransport

from diabetes_mlops.azure.clients import container_service_client
from diabetes_mlops.config import load_settings
from diabetes_mlops.deploy.aci import DeployFailed
from diabetes_mlops.deploy.aks import deploy_aks, kube_client, rollback_aks

SUB = "00000000-0000-0000-0000-000000000003"
CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod"
KEY = "prod-key-456"
DEPLOYMENT = "/apis/apps/v1/namespaces/diabetes/deployments/diabetes-scoring"


@dataclass
class SmokeResult:
    ok: bool
    reason: str


class Smoke:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, url: str, key: str | None = None, **kwargs: Any) -> SmokeResult:
        self.calls.append((url, key))
        return SmokeResult(self.ok, "ok" if self.ok else "GET /ready answered 503")


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(
        home=tmp_path,
        azure_subscription_id=SUB,
        azure_resource_group="rg-other",
        azure_aks_resource_group="rg-aks",
        azure_aks_cluster="aks-prod",
        azure_aks_replicas=3,
        azure_aks_max_replicas=8,
        azure_aks_cpu="250m",
        azure_aks_memory="768Mi",
        azure_aks_target_cpu_percent=60,
        scoring_key=KEY,
    )


@pytest.fixture
def kube():
    with FakeKube() as server:
        yield server


@pytest.fixture
def api(settings, kube: FakeKube):
    arm = FakeTransport()
    value = base64.b64encode(kube.kubeconfig().encode()).decode()
    credentials = {"kubeconfigs": [{"name": "clusterUser", "value": value}]}
    arm.on("POST", rf"{CLUSTER}/listClusterUserCredential", (200, credentials))
    client = container_service_client(settings, FakeCredential(), transport=arm)
    api = kube_client(settings, client)
    (call,) = arm.calls
    assert call.method == "POST" and call.path == f"{CLUSTER}/listClusterUserCredential"
    assert call.api_version and call.api_version >= "2024-01-01"
    return api


def _applied(kube: FakeKube, path: str) -> list[dict[str, Any]]:
    return [r for r in kube.requests if r["method"] == "PATCH" and r["path"] == path]


def test_deploy_applies_deployment_service_and_autoscaler_then_smoke_tests(settings, kube, api) -> None:
    smoke = Smoke()
    result = deploy_aks(settings, api, "acrmlops.azurecr.io/diabetes:3", smoke=smoke, poll_seconds=0)

    assert result.url == "http://20.50.60.70:80"
    assert result.previous_image is None
    assert smoke.calls == [("http://20.50.60.70:80", KEY)]
    order = [r["path"].rsplit("/", 2)[-2] for r in kube.requests if r["method"] == "PATCH"]
    assert order == ["namespaces", "secrets", "deployments", "services", "horizontalpodautoscalers"]
    for request in kube.requests:
        if request["method"] == "PATCH":
            assert request["content_type"] == "application/apply-patch+yaml"
            assert "fieldManager=diabetes-mlops" in request["query"] and "force=true" in request["query"]

    (deployment,) = _applied(kube, DEPLOYMENT)
    spec = deployment["body"]["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"] == "acrmlops.azurecr.io/diabetes:3"
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "768Mi"}, "limits": {"memory": "768Mi"}}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    key_ref = {"secretKeyRef": {"name": "diabetes-scoring-key", "key": "key"}}
    key_env = {"name": "DIABETES_MLOPS_SCORING_KEY", "valueFrom": key_ref}
    assert key_env in container["env"]
    assert KEY not in str(deployment["body"])  # the key lives only in the Secret

    (secret,) = _applied(kube, "/api/v1/namespaces/diabetes/secrets/diabetes-scoring-key")
    assert secret["body"]["stringData"] == {"key": KEY}
    (service,) = _applied(kube, "/api/v1/namespaces/diabetes/services/diabetes-scoring")
    assert service["body"]["spec"]["type"] == "LoadBalancer"
    assert service["body"]["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    (hpa,) = _applied(kube, "/apis/autoscaling/v2/namespaces/diabetes/horizontalpodautoscalers/diabetes-scoring")
    assert hpa["body"]["spec"]["minReplicas"] == 3 and hpa["body"]["spec"]["maxReplicas"] == 8
    assert hpa["body"]["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
    # It waited for the rollout: the deployment was read until the controller reported it complete.
    reads = [r for r in kube.requests if r["method"] == "GET" and r["path"] == DEPLOYMENT]
    assert len(reads) >= 1 + kube.rollout_polls + 1
    assert all(r["content_type"] is None for r in reads)


def test_a_new_version_records_the_previous_image_and_rollback_reapplies_it(settings, kube, api) -> None:
    deploy_aks(settings, api, "acrmlops.azurecr.io/diabetes:3", smoke=Smoke(), poll_seconds=0)
    second = deploy_aks(settings, api, "acrmlops.azurecr.io/diabetes:4", smoke=Smoke(), poll_seconds=0)
    assert second.previous_image == "acrmlops.azurecr.io/diabetes:3"
    stored = kube.objects[DEPLOYMENT]
    assert stored["metadata"]["generation"] == 2
    assert stored["metadata"]["annotations"]["diabetes-mlops/previous-image"] == "acrmlops.azurecr.io/diabetes:3"

    rolled = rollback_aks(settings, api, smoke=Smoke(), poll_seconds=0)
    assert rolled.image == "acrmlops.azurecr.io/diabetes:3"
    assert kube.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["image"] == rolled.image
    assert kube.objects[DEPLOYMENT]["metadata"]["generation"] == 3


def test_rollback_without_a_previous_image_is_an_error(settings, kube, api) -> None:
    with pytest.raises(DeployFailed, match="no previous image"):
        rollback_aks(settings, api, smoke=Smoke(), poll_seconds=0)
    deploy_aks(settings, api, "acrmlops.azurecr.io/diabetes:3", smoke=Smoke(), poll_seconds=0)
    with pytest.raises(DeployFailed, match="no previous image"):
        rollback_aks(settings, api, smoke=Smoke(), poll_seconds=0)


def test_a_rollout_that_does_not_finish_or_a_failed_smoke_test_fails_the_deploy(tmp_path, settings, api, kube) -> None:
    kube.rollout_polls = 10**6
    quick = load_settings(**{**settings.__dict__, "azure_deploy_timeout": 0.2})
    with pytest.raises(DeployFailed, match="did not finish rolling out"):
        deploy_aks(quick, api, "acrmlops.azurecr.io/diabetes:3", smoke=Smoke(), poll_seconds=0.01)
    kube.rollout_polls = 0
    with pytest.raises(DeployFailed, match="failed its smoke test: GET /ready answered 503") as info:
        deploy_aks(settings, api, "acrmlops.azurecr.io/diabetes:3", smoke=Smoke(ok=False), poll_seconds=0)
    assert KEY not in str(info.value)
