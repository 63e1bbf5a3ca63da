"""Production on AKS: the cluster's user kubeconfig, then Deployment, Service and autoscaler by server-side apply.

The pods reach Azure (Blob for the scoring logs) through workload identity: with ``azure_aks_service_account``
they run as that service account, annotated with the identity ``azure_identity_client_id`` names and labelled
for the webhook; the identity's federated credential must name the cluster's OIDC issuer and that account.

Every object is applied whole with ``application/apply-patch+yaml`` (``kubectl apply --server-side``): one
request creates or updates it, so a deployment can be re-run after any failure. The Deployment names the
model version it serves in the annotation ``diabetes-mlops/model``; a rollback is a deployment of an earlier
version's image (``deploy.release``), so nothing here remembers images.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from diabetes_mlops import progress
from diabetes_mlops.azure.clients import require
from diabetes_mlops.deploy.bundle import SERVICE_PORT
from diabetes_mlops.deploy.targets.base import LOG_TAIL_LINES, Endpoint, Published, container_environment, log_tail
from diabetes_mlops.errors import DeployError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.containerservice import ContainerServiceClient
    from kubernetes.client import ApiClient

    from diabetes_mlops.config import Settings

APP = "diabetes-scoring"
SECRET = "diabetes-scoring-secrets"  # the container's secret variables, each under its own name
SECRET_CHECKSUM_ANNOTATION = "diabetes-mlops/secret-checksum"  # sha256 of those values, on the pod template
FIELD_MANAGER = "diabetes-mlops"
APPLY = "application/apply-patch+yaml"
MODEL_ANNOTATION = "diabetes-mlops/model"
# Entra ID's application of AKS API servers: the scope when a kubeconfig's kubelogin names no --server-id.
AKS_SERVER_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
PUBLIC_PORT = 80
USE_LABEL = "azure.workload.identity/use"  # the workload identity webhook acts on pods with this label
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"


def kube_client(settings: Settings, client: ContainerServiceClient, credential: TokenCredential) -> ApiClient:
    """A Kubernetes client from the cluster's user kubeconfig (the caller's Azure role decides what it may do).

    An Entra ID cluster's kubeconfig logs in through ``kubelogin``, interactively by default, which would hold
    a build until someone opens a browser: its user is replaced by a token for the AKS server application,
    from the same Azure credential as every other call.
    """
    import yaml
    from kubernetes import config

    group = settings.azure.aks_resource_group or require(settings.azure, "resource_group")
    result = client.managed_clusters.list_cluster_user_credentials(group, require(settings.azure, "aks_cluster"))
    value = result.kubeconfigs[0].value if result.kubeconfigs else None
    if not value:
        raise DeployError(f"AKS cluster {settings.azure.aks_cluster} returned no kubeconfig")
    kubeconfig = yaml.safe_load(bytes(value))
    for user in kubeconfig.get("users") or []:
        login = (user.get("user") or {}).get("exec")
        if login is not None:
            user["user"] = {"token": credential.get_token(server_scope(login.get("args") or [])).token}
    return config.new_client_from_config_dict(kubeconfig)


def server_scope(kubelogin_args: list[str]) -> str:
    """The token scope of the cluster's API server: the application kubelogin's ``--server-id`` names (AKS's own
    unless the cluster was set up with another), as kubelogin itself would ask for."""
    for index, arg in enumerate(kubelogin_args):
        if arg == "--server-id" and index + 1 < len(kubelogin_args):
            return f"{kubelogin_args[index + 1]}/.default"
        if arg.startswith("--server-id="):
            return f"{arg.split('=', 1)[1]}/.default"
    return AKS_SERVER_SCOPE


# A pod being replaced keeps serving while the Service stops routing to it (preStop), then on SIGTERM drains
# its keep-alive connections (up to their 5 s keep-alive) and in-flight requests (up to 30 s).
PRE_STOP_SECONDS = 5
TERMINATION_GRACE_SECONDS = 45


def deployment_manifest(settings: Settings, published: Published) -> dict[str, Any]:
    """Resources, probes, and a rolling update that never drops below the running replica count.

    No ``replicas``: the autoscaler owns that field (from ``azure_aks_replicas`` up), and applying it would
    reset the count the autoscaler chose on every deployment.
    """
    probe = {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5, "failureThreshold": 3}
    annotations = {MODEL_ANNOTATION: f"{published.name}:{published.version}"}
    variables = container_environment(settings, SERVICE_PORT)
    env = [
        {"name": v.name, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": v.name}}}
        if v.secret
        else {"name": v.name, "value": v.value}
        for v in variables
    ]
    pod: dict[str, Any] = {}
    labels = {"app": APP}
    # A pod reads its secret variables when it starts: a new key must roll the pods, so the template names it.
    secret_values = "\0".join(f"{v.name}={v.value}" for v in variables if v.secret)
    template_annotations = {SECRET_CHECKSUM_ANNOTATION: hashlib.sha256(secret_values.encode()).hexdigest()}
    if settings.azure.aks_service_account:  # workload identity: the pod's Azure SDKs get the account's identity
        pod["serviceAccountName"] = settings.azure.aks_service_account
        labels[USE_LABEL] = "true"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "labels": {"app": APP}, "annotations": annotations},
        "spec": {
            "selector": {"matchLabels": {"app": APP}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels, "annotations": template_annotations},
                "spec": {
                    **pod,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "containers": [
                        {
                            "name": "scoring",
                            "image": published.image,
                            "ports": [{"name": "http", "containerPort": SERVICE_PORT}],
                            "env": env,
                            "resources": {
                                "requests": {"cpu": settings.azure.aks_cpu, "memory": settings.azure.aks_memory},
                                "limits": {"memory": settings.azure.aks_memory},
                            },
                            "readinessProbe": probe,
                            "livenessProbe": {**probe, "httpGet": {"path": "/health", "port": "http"}},
                            "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}},
                        }
                    ],
                },
            },
        },
    }


def service_account_manifest(settings: Settings) -> dict[str, Any]:
    """The pods' service account, naming the managed identity workload identity gives them."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": settings.azure.aks_service_account,
            "labels": {"app": APP},
            "annotations": {CLIENT_ID_ANNOTATION: require(settings.azure, "identity_client_id")},
        },
    }


def service_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APP, "labels": {"app": APP}},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": APP},
            "ports": [{"name": "http", "port": PUBLIC_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscaler_manifest(settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": APP},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "minReplicas": settings.azure.aks_replicas,
            "maxReplicas": settings.azure.aks_max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": settings.azure.aks_target_cpu_percent},
                    },
                }
            ],
        },
    }


def _apply_options() -> dict[str, Any]:
    return {"field_manager": FIELD_MANAGER, "force": True, "_content_type": APPLY}


def served_model(api: ApiClient, namespace: str) -> tuple[str, int, str] | None:
    """The model name, version and image the Deployment runs now; None when there is no Deployment."""
    from kubernetes.client import AppsV1Api
    from kubernetes.client.exceptions import ApiException

    try:
        found = AppsV1Api(api).read_namespaced_deployment(APP, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    annotations = (found.metadata and found.metadata.annotations) or {}
    name, _, version = annotations.get(MODEL_ANNOTATION, "").rpartition(":")
    pod = found.spec.template.spec if found.spec else None
    image = pod.containers[0].image if pod and pod.containers else None
    if not name or not version.isdigit() or image is None:
        return None
    return name, int(version), image


def apply(settings: Settings, api: ApiClient, published: Published) -> None:
    """Secret, service account, Deployment, Service and autoscaler, each by server-side apply, in the existing
    namespace.

    The namespace is created only when it is missing (which needs a cluster-wide role); a role bound in the
    namespace alone is enough for every deployment after that.
    """
    from kubernetes.client import AppsV1Api, AutoscalingV2Api, CoreV1Api, V1Namespace, V1ObjectMeta
    from kubernetes.client.exceptions import ApiException

    ns = settings.azure.aks_namespace
    core = CoreV1Api(api)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET},
        "type": "Opaque",
        "stringData": {v.name: v.value for v in container_environment(settings, SERVICE_PORT) if v.secret},
    }
    try:
        core.patch_namespaced_secret(SECRET, ns, secret, **_apply_options())
    except ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespace(V1Namespace(api_version="v1", kind="Namespace", metadata=V1ObjectMeta(name=ns)))
        core.patch_namespaced_secret(SECRET, ns, secret, **_apply_options())
    if settings.azure.aks_service_account:
        account = service_account_manifest(settings)
        core.patch_namespaced_service_account(account["metadata"]["name"], ns, account, **_apply_options())
    AppsV1Api(api).patch_namespaced_deployment(APP, ns, deployment_manifest(settings, published), **_apply_options())
    core.patch_namespaced_service(APP, ns, service_manifest(), **_apply_options())
    AutoscalingV2Api(api).patch_namespaced_horizontal_pod_autoscaler(
        APP, ns, autoscaler_manifest(settings), **_apply_options()
    )


def wait_for_rollout(api: ApiClient, namespace: str, timeout: float, poll_seconds: float = 5.0) -> None:
    """Wait as ``kubectl rollout status`` does: the new generation observed, every replica updated and available."""
    from kubernetes.client import AppsV1Api

    deadline = time.monotonic() + timeout
    with progress.task(f"rollout of {namespace}/{APP}"):
        while True:
            found = AppsV1Api(api).read_namespaced_deployment(APP, namespace)
            status, wanted = found.status, found.spec.replicas or 0
            if status is not None:
                progress.update(f"{status.available_replicas or 0}/{wanted} replicas available")
            if (
                status is not None
                and (status.observed_generation or 0) >= ((found.metadata and found.metadata.generation) or 0)
                and (status.updated_replicas or 0) == wanted
                and (status.available_replicas or 0) == wanted
                and (status.replicas or 0) == wanted  # old pods gone
            ):
                return
            if time.monotonic() >= deadline:
                raise DeployError(f"deployment {namespace}/{APP} did not finish rolling out in {timeout:.0f} s")
            time.sleep(poll_seconds)


def external_url(api: ApiClient, namespace: str, timeout: float, poll_seconds: float = 5.0) -> str:
    """The load balancer's address, once Azure has given it one."""
    from kubernetes.client import CoreV1Api

    deadline = time.monotonic() + timeout
    with progress.task(f"external address of {namespace}/{APP}"):
        while True:
            service = CoreV1Api(api).read_namespaced_service(APP, namespace)
            ingress = (
                service.status.load_balancer.ingress if service.status and service.status.load_balancer else None
            ) or []
            if ingress and (ingress[0].ip or ingress[0].hostname):
                return f"http://{ingress[0].ip or ingress[0].hostname}:{PUBLIC_PORT}"
            if time.monotonic() >= deadline:
                raise DeployError(f"service {namespace}/{APP} got no external address in {timeout:.0f} s")
            time.sleep(poll_seconds)


def deploy_aks(settings: Settings, api: ApiClient, published: Published, poll_seconds: float = 5.0) -> Endpoint:
    """Apply the image, then wait for the rollout and the load balancer's address."""
    ns, timeout = settings.azure.aks_namespace, settings.azure.deploy_timeout
    apply(settings, api, published)
    try:
        wait_for_rollout(api, ns, timeout, poll_seconds)
    except DeployError as exc:
        raise DeployError(f"{exc}{aks_diagnosis(settings, api)}") from None
    url = external_url(api, ns, timeout, poll_seconds)
    return Endpoint("production", "azure", url, published.name, published.version, published.image)


def aks_endpoint(settings: Settings, api: ApiClient) -> Endpoint | None:
    """What production serves now; None when nothing is deployed or it has no address yet."""
    ns = settings.azure.aks_namespace
    served = served_model(api, ns)
    if served is None:
        return None
    try:
        url = external_url(api, ns, timeout=0)
    except DeployError:
        return None
    name, version, image = served
    return Endpoint("production", "azure", url, name, version, image)


def delete_aks(settings: Settings, api: ApiClient) -> bool:
    """Delete the autoscaler, Service and Deployment (the namespace and key stay); False when there was none."""
    from kubernetes.client import AppsV1Api, AutoscalingV2Api, CoreV1Api
    from kubernetes.client.exceptions import ApiException

    ns, found = settings.azure.aks_namespace, False
    deletions = (
        AutoscalingV2Api(api).delete_namespaced_horizontal_pod_autoscaler,
        CoreV1Api(api).delete_namespaced_service,
        AppsV1Api(api).delete_namespaced_deployment,
    )
    for delete in deletions:
        try:
            delete(APP, ns)
            found = True
        except ApiException as exc:
            if exc.status != 404:
                raise
    return found


def _statuses(pod: Any) -> list[Any]:
    return list((pod.status and pod.status.container_statuses) or [])


def _restarts(pod: Any) -> int:
    return sum(s.restart_count or 0 for s in _statuses(pod))


def _ready(pod: Any) -> bool:
    return bool(_statuses(pod)) and all(s.ready for s in _statuses(pod))


def aks_diagnosis(settings: Settings, api: ApiClient) -> str:
    """The scoring pods' readiness and restarts, and the last log lines of the least healthy pod (of its run
    before the last restart, when it restarted), for a failure message."""
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    namespace = settings.azure.aks_namespace
    core = CoreV1Api(api)
    try:
        pods: list[Any] = core.list_namespaced_pod(namespace, label_selector=f"app={APP}").items
        if not pods:
            return f"\n(no {APP} pod in namespace {namespace})"
        lines = []
        for pod in pods:
            waiting = [s.state.waiting.reason for s in _statuses(pod) if s.state and s.state.waiting]
            note = f", waiting: {', '.join(waiting)}" if waiting else ""
            health = "ready" if _ready(pod) else "not ready"
            lines.append(f"\nPod {pod.metadata.name}: {health}, restarted {_restarts(pod)} times{note}")
        worst = max(pods, key=lambda pod: (not _ready(pod), _restarts(pod)))
        restarted = _restarts(worst) > 0
        logs = core.read_namespaced_pod_log(
            worst.metadata.name, namespace, container="scoring", tail_lines=LOG_TAIL_LINES, previous=restarted
        )
    except ApiException as exc:  # the smoke test failed already: this is help, not a second failure
        return f"\n(the pods could not be inspected: {exc.status} {exc.reason})"
    return "".join(lines) + log_tail(logs or "")
