"""Production on AKS: the real azure-mgmt-containerservice and kubernetes clients against fakes on loopback."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from fake_kube import FakeKube
from fakes import FakeCredential, FakeTransport

from diabetes_mlops.azure.clients import container_service_client
from diabetes_mlops.config import load_settings, setting_values
from diabetes_mlops.deploy.aks import aks_endpoint, delete_aks, deploy_aks, kube_client, server_scope
from diabetes_mlops.deploy.targets import Published
from diabetes_mlops.errors import DeployError

SUB = "00000000-0000-0000-0000-000000000003"
CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod"
KEY = "prod-key-456"
DEPLOYMENT = "/apis/apps/v1/namespaces/diabetes/deployments/diabetes-scoring"
DIGEST = "sha256:" + "3" * 64
V3 = Published("diabetes", 3, None, f"acrmlops.azurecr.io/diabetes@{DIGEST}")
V4 = Published("diabetes", 4, None, f"acrmlops.azurecr.io/diabetes@sha256:{'4' * 64}")


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


def connect(settings, kube: FakeKube, credential: FakeCredential, kubelogin: bool = False):
    """The kit's Kubernetes client for the cluster whose user kubeconfig ARM hands out."""
    arm = FakeTransport()
    value = base64.b64encode(kube.kubeconfig(kubelogin).encode()).decode()
    credentials = {"kubeconfigs": [{"name": "clusterUser", "value": value}]}
    arm.on("POST", rf"{CLUSTER}/listClusterUserCredential", (200, credentials))
    client = container_service_client(settings, credential, transport=arm)
    api = kube_client(settings, client, credential)
    (call,) = arm.calls
    assert call.method == "POST" and call.path == f"{CLUSTER}/listClusterUserCredential"
    assert call.api_version and call.api_version >= "2024-01-01"
    return api


@pytest.fixture
def api(settings, kube: FakeKube):
    return connect(settings, kube, FakeCredential())


def _applied(kube: FakeKube, path: str) -> list[dict[str, Any]]:
    return [r for r in kube.requests if r["method"] == "PATCH" and r["path"] == path]


def test_deploy_applies_deployment_service_and_autoscaler_by_digest(settings, kube, api) -> None:
    result = deploy_aks(settings, api, V3, poll_seconds=0)

    assert result.url == "http://20.50.60.70:80"
    assert (result.env, result.target, result.name, result.version, result.image) == (
        "production", "azure", "diabetes", 3, V3.image,
    )  # fmt: skip
    order = [(r["method"], r["path"].rsplit("/", 2)[-2]) for r in kube.requests if r["method"] in ("PATCH", "POST")]
    assert order == [  # the missing namespace is created once, then the Secret applied again
        ("PATCH", "secrets"),
        ("POST", "v1"),
        ("PATCH", "secrets"),
        ("PATCH", "deployments"),
        ("PATCH", "services"),
        ("PATCH", "horizontalpodautoscalers"),
    ]
    for request in kube.requests:
        if request["method"] == "PATCH":
            assert request["content_type"] == "application/apply-patch+yaml"
            assert "fieldManager=diabetes-mlops" in request["query"] and "force=true" in request["query"]

    (deployment,) = _applied(kube, DEPLOYMENT)
    spec = deployment["body"]["spec"]
    assert "replicas" not in spec  # the autoscaler's field
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"] == V3.image
    assert deployment["body"]["metadata"]["annotations"] == {"diabetes-mlops/model": "diabetes:3"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "768Mi"}, "limits": {"memory": "768Mi"}}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    # The pod outlives its removal from the Service (preStop), then drains within the grace period.
    assert container["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", "5"]}}
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] > 5 + 6 + 30
    key_ref = {"secretKeyRef": {"name": "diabetes-scoring-secrets", "key": "DIABETES_MLOPS_SCORING_KEY"}}
    key_env = {"name": "DIABETES_MLOPS_SCORING_KEY", "valueFrom": key_ref}
    assert key_env in container["env"]
    assert KEY not in str(deployment["body"])  # the key lives only in the Secret

    refused, secret = _applied(kube, "/api/v1/namespaces/diabetes/secrets/diabetes-scoring-secrets")
    assert refused["body"] == secret["body"] and secret["body"]["stringData"] == {"DIABETES_MLOPS_SCORING_KEY": KEY}
    (service,) = _applied(kube, "/api/v1/namespaces/diabetes/services/diabetes-scoring")
    assert service["body"]["spec"]["type"] == "LoadBalancer"
    assert service["body"]["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    (hpa,) = _applied(kube, "/apis/autoscaling/v2/namespaces/diabetes/horizontalpodautoscalers/diabetes-scoring")
    assert hpa["body"]["spec"]["minReplicas"] == 3 and hpa["body"]["spec"]["maxReplicas"] == 8
    assert hpa["body"]["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
    # It waited for the rollout: the deployment was read until the controller reported it complete.
    reads = [r for r in kube.requests if r["method"] == "GET" and r["path"] == DEPLOYMENT]
    assert len(reads) >= kube.rollout_polls + 1
    assert all(r["content_type"] is None for r in reads)


def test_endpoint_names_the_served_version_and_delete_removes_the_objects(settings, kube, api) -> None:
    assert aks_endpoint(settings, api) is None
    deploy_aks(settings, api, V3, poll_seconds=0)
    deploy_aks(settings, api, V4, poll_seconds=0)
    assert kube.objects[DEPLOYMENT]["metadata"]["generation"] == 2
    found = aks_endpoint(settings, api)
    assert found is not None and (found.version, found.image, found.url) == (4, V4.image, "http://20.50.60.70:80")
    assert delete_aks(settings, api) is True
    assert DEPLOYMENT not in kube.objects and aks_endpoint(settings, api) is None
    assert delete_aks(settings, api) is False


def test_a_rollout_that_does_not_finish_fails_the_deploy(settings, api, kube) -> None:
    kube.rollout_polls = 10**6
    quick = load_settings(**{**setting_values(settings), "azure_deploy_timeout": 0.2})
    with pytest.raises(DeployError, match="did not finish rolling out") as info:
        deploy_aks(quick, api, V3, poll_seconds=0.01)
    assert KEY not in str(info.value)


def test_an_entra_id_cluster_is_reached_with_the_azure_credential_not_kubelogin(settings, kube) -> None:
    """kubelogin's default login is a device code a build would wait on; the Azure credential's token is used."""

    class PerScope(FakeCredential):
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            self.scopes.append(scopes)
            return AccessToken(f"token-for-{scopes[0]}", int(time.time()) + 3600)

    credential = PerScope()
    api = connect(settings, kube, credential, kubelogin=True)
    kube.token = "token-for-6dae42f8-4368-4678-94ff-3960e28e3630/.default"
    deploy_aks(settings, api, V3, poll_seconds=0)
    assert kube.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["image"] == V3.image


@pytest.mark.parametrize(
    ("args", "scope"),
    [
        (["get-token", "--login", "devicecode", "--server-id", "11111111-2222-3333-4444-555555555555"],
         "11111111-2222-3333-4444-555555555555/.default"),
        (["get-token", "--server-id=api://my-aks-server", "--login", "azurecli"], "api://my-aks-server/.default"),
        (["get-token", "--login", "devicecode"], "6dae42f8-4368-4678-94ff-3960e28e3630/.default"),
    ],
)  # fmt: skip
def test_the_token_is_asked_for_the_server_application_the_kubeconfig_names(args: list[str], scope: str) -> None:
    assert server_scope(args) == scope


def test_a_role_bound_in_the_namespace_deploys_without_touching_namespaces(settings, kube, api) -> None:
    kube.objects["/api/v1/namespaces/diabetes"] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "diabetes", "selfLink": "/api/v1/namespaces/diabetes"}}  # fmt: skip
    kube.namespace_role = True
    deploy_aks(settings, api, V3, poll_seconds=0)
    deploy_aks(settings, api, V4, poll_seconds=0)
    assert not [r for r in kube.requests if r["path"].startswith("/api/v1/namespaces") and r["path"].count("/") <= 4]
    assert aks_endpoint(settings, api).version == 4


def test_a_redeploy_keeps_the_replica_count_the_autoscaler_chose(settings, kube, api) -> None:
    deploy_aks(settings, api, V3, poll_seconds=0)
    kube.objects[DEPLOYMENT]["spec"]["replicas"] = 5  # the HPA scaled out under load
    deploy_aks(settings, api, V4, poll_seconds=0)
    assert kube.objects[DEPLOYMENT]["spec"]["replicas"] == 5
    assert kube.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["image"] == V4.image


def test_production_pods_log_to_blob_report_to_app_insights_and_run_as_the_workload_identity(settings, kube, api):
    """Without these the scoring log stays in the pod (lost on restart, unseen by drift) and telemetry goes nowhere."""
    wired = load_settings(**{**setting_values(settings), "azure_storage_account_url": "https://logs.blob.core.windows.net",
        "azure_appinsights_connection_string": "InstrumentationKey=ik-1;IngestionEndpoint=https://in.example/",
        "azure_identity_client_id": "11111111-2222-3333-4444-555555555555",
        "azure_aks_service_account": "diabetes-scoring"})  # fmt: skip
    deploy_aks(wired, api, V3, poll_seconds=0)
    pod = kube.objects[DEPLOYMENT]["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "diabetes-scoring"
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    env = {
        e["name"]: e.get("value") or e["valueFrom"]["secretKeyRef"]["key"] for e in pod["spec"]["containers"][0]["env"]
    }
    assert env["DIABETES_MLOPS_AZURE_STORAGE_ACCOUNT_URL"] == "https://logs.blob.core.windows.net"
    assert env["DIABETES_MLOPS_AZURE_STORAGE_CONTAINER"] == "scoring-logs"
    assert env["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "APPLICATIONINSIGHTS_CONNECTION_STRING"  # from the Secret
    assert env["AZURE_CLIENT_ID"] == "11111111-2222-3333-4444-555555555555"
    secret = kube.objects["/api/v1/namespaces/diabetes/secrets/diabetes-scoring-secrets"]
    assert set(secret["data"]) == {"DIABETES_MLOPS_SCORING_KEY", "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert "ik-1" not in str(kube.objects[DEPLOYMENT])
