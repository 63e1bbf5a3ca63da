"""An AKS cluster's Kubernetes API whose Deployments run: each replica is a container of the Runtime, a
rollout starts the new pods, waits until they are ready, then stops the old ones (maxUnavailable 0), and a
LoadBalancer Service's IP leads (through the gateway) to a ready pod.

The cluster uses Entra ID, as AKS's managed Entra integration sets it up: the API server speaks HTTPS with a
certificate of the cluster's own CA (in the kubeconfig as ``certificate-authority-data``), the user kubeconfig
runs ``kubelogin`` for the AKS server application (``--server-id``), and every request must carry an unexpired
Entra token issued for that application; any other is a 401, as the API server answers it. Authorization is
Azure RBAC for Kubernetes: the caller's role assignments must permit the request's data action
(``Microsoft.ContainerService/managedClusters/<group>/<resource>/<verb>``) on the cluster, or for a namespaced
object on ``<cluster id>/namespaces/<namespace>``; else the API server's 403.

Pods get Azure tokens only through workload identity, as its admission webhook sets a pod up: a pod labelled
``azure.workload.identity/use: "true"`` whose service account is annotated with an identity's client id gets
``AZURE_CLIENT_ID``, ``AZURE_TENANT_ID``, ``AZURE_AUTHORITY_HOST`` and ``AZURE_FEDERATED_TOKEN_FILE``, a service
account token of the cluster's OIDC issuer (audience ``api://AzureADTokenExchange``, subject
``system:serviceaccount:<namespace>:<name>``) that Entra exchanges only for an identity with a federated
credential naming that issuer and subject. A pod whose service account does not exist is never created.
"""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fake_kube import FakeKube
from fake_kube import _status as kube_status

from tests.simazure.containers import in_background
from tests.simazure.entra import EXCHANGE_AUDIENCE, TokenRefused, sign
from tests.simazure.restarts import Supervised
from tests.simazure.tls import serve_tls

if TYPE_CHECKING:
    from tests.simazure.containers import Runtime
    from tests.simazure.entra import Entra, Principal
    from tests.simazure.gateway import Gateway
    from tests.simazure.rbac import Authorization

# Entra ID's application of every AKS API server (what ``kubelogin --server-id`` names).
AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"
USE_LABEL = "azure.workload.identity/use"
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
TENANT_ID_ANNOTATION = "azure.workload.identity/tenant-id"
TOKEN_SECONDS = 3600
POD_PATH = re.compile(r"/api/v1/namespaces/(?P<namespace>[^/]+)/pods(?:/(?P<name>[^/]+)/log)?")


class SimKube(FakeKube):
    """The fake API server, with pods that are real processes."""

    def __init__(
        self,
        runtime: Runtime,
        gateway: Gateway,
        lb_ip: str,
        entra: Entra,
        tls: tuple[Path, Path],
        ca_file: Path,
        issuer: str,
        authority: str,
        tokens_dir: Path,
        rbac: Authorization,
        cluster_id: str,
    ) -> None:
        super().__init__(rollout_polls=0, lb_ip=lb_ip)
        self.rbac = rbac
        self.cluster_id = cluster_id
        serve_tls(self.server, tls)
        self.entra = entra
        self.issuer = issuer  # the cluster's OIDC issuer URL
        self._issuer_key = entra.trust_issuer(issuer)
        self.authority = authority
        self.tokens_dir = tokens_dir
        self.ca_file = ca_file
        self.runtime = runtime
        self.gateway = gateway
        self.pods: dict[str, list[tuple[int, Supervised]]] = {}  # deployment path -> (generation, pod)
        self.observed: dict[str, int] = {}
        self.failures: dict[str, str] = {}
        # deployment path -> the pods of its stalled rollout, restarted (policy Always) as the kubelet does
        self.stalled: dict[str, list[Supervised]] = {}
        self._pods_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, kubelogin: bool = True) -> str:
        """The cluster user kubeconfig of an Entra ID cluster: its CA, and kubelogin for the AKS server app."""
        authority = base64.b64encode(self.ca_file.read_bytes()).decode()
        return (
            "apiVersion: v1\nkind: Config\ncurrent-context: aks\n"
            f"clusters:\n- name: aks\n  cluster:\n    server: {self.url}\n"
            f"    certificate-authority-data: {authority}\n"
            "users:\n- name: clusterUser_rg_aks\n  user:\n"
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n"
            f"      args: [get-token, --login, devicecode, --server-id, {AKS_SERVER_APP}]\n"
            "      interactiveMode: IfAvailable\n"
            "contexts:\n- name: aks\n  context:\n    cluster: aks\n    user: clusterUser_rg_aks\n"
        )

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        try:
            principal, _ = self.entra.check(authorization, (AKS_SERVER_APP,))
        except TokenRefused:
            return 401, kube_status(401, "Unauthorized", "Unauthorized")
        forbidden = self._forbidden(principal, method, path)
        if forbidden is not None:
            return 403, kube_status(403, "Forbidden", forbidden)
        if method == "GET" and POD_PATH.fullmatch(path):
            return self._pod_answer(path, query)
        status, answer = super().handle(method, path, query, headers, body)
        if method == "PATCH" and status < 300 and answer.get("kind") == "Deployment":
            generation = answer["metadata"]["generation"]
            if self.observed.get(path, 0) < generation:
                in_background(self._roll_out, path, generation)
        return status, answer

    def create_namespace(self, name: str) -> None:
        """A namespace made by the cluster's admin (the kit's principal may write only inside it)."""
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        super().handle("POST", "/api/v1/namespaces", "", {}, body)

    def _forbidden(self, principal: Principal, method: str, path: str) -> str | None:
        """The API server's message when Azure RBAC does not permit the request; None when it does."""
        parts = [p for p in path.split("/") if p]
        group, rest = ("", parts[2:]) if parts[:1] == ["api"] else (parts[1], parts[3:])
        namespace = rest[1] if rest[:1] == ["namespaces"] and len(rest) > 2 else None
        resource_parts = rest[2:] if namespace else rest
        if not resource_parts:
            return None
        resource, name = resource_parts[0], (resource_parts[1] if len(resource_parts) > 1 else "")
        if len(resource_parts) > 2:  # a subresource: pods/log, deployments/scale
            resource = f"{resource}/{resource_parts[2]}"
        verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update", "PATCH": "patch"}.get(
            method, "delete"
        )
        action = "read" if verb in ("get", "list") else ("delete" if verb == "delete" else "write")
        data_action = "/".join(
            ["Microsoft.ContainerService/managedClusters", *([group] if group else []), resource, action]
        )
        scope = f"{self.cluster_id}/namespaces/{namespace}" if namespace else self.cluster_id
        if self.rbac.permits(principal, data_action, scope, data=True):
            return None
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        kind = f"{resource}.{group}" if group else resource
        return (
            f'{kind} "{name}" is forbidden: User "{principal.object_id}" cannot {verb} resource "{resource}" in API '
            f'group "{group}"{where}: User does not have access to the resource in Azure. Update role assignment '
            "to allow access."
        )

    def _env(self, namespace: str, container: dict[str, Any]) -> dict[str, str]:
        env = {}
        for item in container.get("env", []):
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                secret = self.objects.get(f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}", {})
                env[item["name"]] = base64.b64decode(secret.get("data", {}).get(ref["key"], "")).decode()
            else:
                env[item["name"]] = str(item.get("value", ""))
        return env

    def _workload_identity(self, namespace: str, template: dict[str, Any]) -> dict[str, str]:
        """What the workload identity webhook gives a pod of ``template``: nothing unless it is labelled; the
        token file of its service account and the identity that account names."""
        account = template["spec"].get("serviceAccountName", "default")
        found = self.objects.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}")
        if found is None and account != "default":
            raise RuntimeError(
                f'error looking up service account {namespace}/{account}: serviceaccount "{account}" not found'
            )
        if (template["metadata"].get("labels") or {}).get(USE_LABEL) != "true" or found is None:
            return {}
        annotations = found["metadata"].get("annotations") or {}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": f"system:serviceaccount:{namespace}:{account}",
            "aud": [EXCHANGE_AUDIENCE],
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_SECONDS,
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": account}},
        }
        token_file = self.tokens_dir / uuid.uuid4().hex / "azure-identity-token"
        token_file.parent.mkdir(parents=True)
        token_file.write_text(sign(self._issuer_key, claims))
        return {
            "AZURE_CLIENT_ID": annotations.get(CLIENT_ID_ANNOTATION, ""),
            "AZURE_TENANT_ID": annotations.get(TENANT_ID_ANNOTATION, self.entra.tenant),
            "AZURE_AUTHORITY_HOST": self.authority,
            "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        }

    def _roll_out(self, path: str, generation: int) -> None:
        """Start the generation's pods and, once every one is ready, route to them and stop the old ones.

        As the Deployment controller does, a new pod is waited for however long it takes to be ready, across
        its container's restarts (a crash-looping pod stalls the rollout, and the old pods serve on), until a
        newer generation replaces this one. Meanwhile the pending pods are listed with the serving ones.
        """
        deployment = self.objects[path]
        namespace = deployment["metadata"]["namespace"]
        template = deployment["spec"]["template"]
        spec = template["spec"]["containers"][0]
        new: list[Supervised] = []
        with self._pods_lock:
            earlier = self.stalled.pop(path, [])
            self.stalled[path] = new
        for pod in earlier:  # an older generation's pending pods: this rollout replaces them
            pod.stop()
        try:
            for _ in range(deployment["spec"].get("replicas", 1)):
                env = {**self._workload_identity(namespace, template), **self._env(namespace, spec)}
                # The kubelet restarts a pod's container whenever it exits (restartPolicy Always).
                pod = Supervised(lambda env=env: self.runtime.start(spec["image"], env), "Always", lambda _: None)
                new.append(pod)
                pod.begin()
                while not pod.ready():
                    if pod.stopped or self._superseded(path, generation):
                        return
                    time.sleep(0.2)
        except Exception as exc:  # the image cannot start at all: the rollout stalls, the old pods serve on
            self.failures[path] = str(exc)
            return
        with self._pods_lock:
            if self._superseded(path, generation) or self.stalled.get(path) is not new:
                old, new_pods = new, []  # a newer apply came in meanwhile: this one is already stale
            else:
                old = [pod for _, pod in self.pods.get(path, [])]
                new_pods = [(generation, pod) for pod in new]
                self.pods[path] = new_pods
                self.observed[path] = generation
                self.stalled.pop(path, None)
        if new_pods:
            self._route_services(namespace, new_pods[0][1].port)
        for pod in old:
            pod.stop()

    def _superseded(self, path: str, generation: int) -> bool:
        found = self.objects.get(path)
        return found is None or found["metadata"]["generation"] != generation

    def _pod_answer(self, path: str, query: str) -> tuple[int, Any]:
        """``GET .../pods`` (a PodList, by ``labelSelector`` ``app=``) or ``GET .../pods/{name}/log`` (``tailLines``,
        ``previous``: the run before the last restart)."""
        found = POD_PATH.fullmatch(path)
        assert found is not None
        namespace, name = found["namespace"], found["name"]
        params = parse_qs(query)
        pods = self._pods_of(namespace)
        if name is None:
            wanted = dict(part.split("=", 1) for part in params.get("labelSelector", [""])[0].split(",") if part)
            items = [pod for pod, _ in pods if wanted.items() <= pod["metadata"]["labels"].items()]
            return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
        running = next((r for pod, r in pods if pod["metadata"]["name"] == name), None)
        if running is None:
            return 404, kube_status(404, "NotFound", f'pods "{name}" not found')
        tail = int(params.get("tailLines", ["0"])[0]) or None
        return 200, running.logs(tail, previous=params.get("previous") == ["true"])

    def _pods_of(self, namespace: str) -> list[tuple[dict[str, Any], Supervised]]:
        """The namespace's pods as the API shows them: the serving ones, and a stalled rollout's, which the
        kubelet restarts (``restartCount``, waiting in ``CrashLoopBackOff``, the last exit in ``lastState``)."""
        out = []
        with self._pods_lock:
            groups = [(p, [pod for _, pod in pods]) for p, pods in self.pods.items()] + list(self.stalled.items())
        for path, runs in groups:
            deployment = self.objects.get(path)
            if deployment is None or deployment["metadata"].get("namespace") != namespace:
                continue
            labels = deployment["spec"]["template"]["metadata"].get("labels") or {}
            for run in runs:
                view, container = run.view(), run.container
                assert container is not None
                state = view["currentState"]
                status: dict[str, Any] = {"name": "scoring", "restartCount": view["restartCount"],
                                          "ready": state["state"] == "Running" and container.ready(),
                                          "image": container.image, "imageID": container.image}  # fmt: skip
                if state["state"] == "Running":
                    status["state"] = {"running": {"startedAt": state["startTime"]}}
                else:
                    status["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
                previous = view.get("previousState")
                if previous is not None:
                    status["lastState"] = {"terminated": {"exitCode": previous["exitCode"], "reason": "Error"}}
                name = f"{deployment['metadata']['name']}-{run.pod_id}"
                pod = {
                    "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
                    "status": {"phase": "Running", "containerStatuses": [status]},
                }
                out.append((pod, run))
        return out

    def _route_services(self, namespace: str, port: int) -> None:
        if any(p.startswith(f"/api/v1/namespaces/{namespace}/services/") for p in self.objects):
            self.gateway.route(self.lb_ip, port)

    def _status(self, obj: dict[str, Any]) -> None:
        super()._status(obj)
        if obj["kind"] != "Deployment":
            return
        path = obj["metadata"]["selfLink"]
        with self._pods_lock:
            pods = self.pods.get(path, [])
        generation = obj["metadata"]["generation"]
        ready = [g for g, pod in pods if pod.ready()]
        obj["status"] = {
            "observedGeneration": self.observed.get(path, 0),
            "replicas": len(pods),
            "updatedReplicas": sum(1 for g in ready if g == generation),
            "readyReplicas": len(ready),
            "availableReplicas": len(ready),
        }

    def stop_pods(self) -> None:
        with self._pods_lock:
            for pods in self.pods.values():
                for _, pod in pods:
                    pod.stop()
            for pending in self.stalled.values():
                for pod in pending:
                    pod.stop()
