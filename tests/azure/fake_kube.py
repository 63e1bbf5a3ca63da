"""A small Kubernetes API server on loopback: stores what is applied and reports rollouts like a cluster."""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# collection path regex -> (apiVersion, kind)
KINDS = {
    r"/api/v1/namespaces": ("v1", "Namespace"),
    r"/api/v1/namespaces/(?P<ns>[^/]+)/secrets": ("v1", "Secret"),
    r"/api/v1/namespaces/(?P<ns>[^/]+)/services": ("v1", "Service"),
    r"/api/v1/namespaces/(?P<ns>[^/]+)/serviceaccounts": ("v1", "ServiceAccount"),
    r"/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments": ("apps/v1", "Deployment"),
    r"/apis/autoscaling/v2/namespaces/(?P<ns>[^/]+)/horizontalpodautoscalers": (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
    ),
}


class FakeKube:
    """Objects by path; a Deployment rolls out after ``rollout_polls`` reads, a Service gets an IP after one.

    Namespaced objects need their namespace; with ``token`` set every request must carry it as a bearer token
    (401 otherwise); with ``namespace_role`` the caller's role is bound in the namespaces only, so
    cluster-scoped requests (namespaces) get 403, as RBAC answers.
    """

    def __init__(self, rollout_polls: int = 2, lb_ip: str = "20.50.60.70") -> None:
        self.token: str | None = None
        self.namespace_role = False
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.rollout_polls = rollout_polls
        self.lb_ip = lb_ip
        self._reads: dict[str, int] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, kubelogin: bool = False) -> str:
        """A cluster user kubeconfig: a static token (local accounts) or, for Entra ID, kubelogin's device code."""
        user = (
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n"
            "      args: [get-token, --login, devicecode, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]\n"
            if kubelogin
            else "    token: fake-user-token\n"
        )
        return (
            "apiVersion: v1\nkind: Config\ncurrent-context: aks\n"
            f"clusters:\n- name: aks\n  cluster:\n    server: {self.url}\n"
            f"users:\n- name: clusterUser_rg_aks\n  user:\n{user}"
            "contexts:\n- name: aks\n  context:\n    cluster: aks\n    user: clusterUser_rg_aks\n"
        )

    def __enter__(self) -> FakeKube:
        self.thread.start()
        return self

    def __exit__(self, *args: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---------------------------------------------------------------------------------------------
    @staticmethod
    def _kind(path: str) -> tuple[str, str, str | None, str | None] | None:
        for pattern, (api_version, kind) in KINDS.items():
            m = re.fullmatch(pattern + r"(?:/(?P<name>[^/]+))?", path)
            if m:
                return api_version, kind, m.groupdict().get("ns"), m.group("name")
        return None

    def _status(self, obj: dict[str, Any]) -> None:
        """What the controllers would have written by the time of this read."""
        kind, key = obj["kind"], obj["metadata"]["selfLink"]
        reads = self._reads[key] = self._reads.get(key, 0) + 1
        if kind == "Deployment":
            wanted = obj["spec"].get("replicas", 1)
            done = reads > self.rollout_polls
            obj["status"] = {
                "observedGeneration": obj["metadata"]["generation"] if done else obj["metadata"]["generation"] - 1,
                "replicas": wanted if done else wanted + 1,
                "updatedReplicas": wanted if done else 1,
                "readyReplicas": wanted,
                "availableReplicas": wanted,
            }
        elif kind == "Service":
            obj["spec"].setdefault("clusterIP", "10.0.0.10")
            obj["status"] = {"loadBalancer": {"ingress": [{"ip": self.lb_ip}]} if reads > 1 else {}}
        elif kind == "Namespace":
            obj["status"] = {"phase": "Active"}

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        self.requests.append(
            {"method": method, "path": path, "query": query, "content_type": headers.get("Content-Type"), "body": body}
        )
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        if self.token is not None and authorization != f"Bearer {self.token}":
            return 401, _status(401, "Unauthorized", "Unauthorized")
        if self.namespace_role and path.startswith("/api/v1/namespaces") and path.count("/") <= 4:
            return 403, _status(403, "Forbidden", f"namespaces is forbidden: {method} needs a cluster role")
        found = self._kind(path)
        if method == "POST" and found is not None and found[1] == "Namespace" and found[3] is None:
            name = body["metadata"]["name"]
            path, found = f"{path}/{name}", ("v1", "Namespace", None, name)
            if path in self.objects:
                return 409, _status(409, "AlreadyExists", f'namespaces "{name}" already exists')
            self.objects[path] = {**body, "metadata": {**body["metadata"], "uid": str(uuid.uuid4()), "selfLink": path}}
            return 201, copy.deepcopy(self.objects[path])
        if found is None or found[3] is None:
            return 404, _not_found(path)
        api_version, kind, namespace, _ = found
        if namespace and f"/api/v1/namespaces/{namespace}" not in self.objects:
            return 404, _status(404, "NotFound", f'namespaces "{namespace}" not found')
        with self._lock:
            current = self.objects.get(path)
            if method == "GET":
                if current is None:
                    return 404, _not_found(path)
                self._status(current)
                return 200, copy.deepcopy(current)
            if method == "PATCH" and headers.get("Content-Type") == "application/apply-patch+yaml":
                obj = copy.deepcopy(body)
                if obj.get("kind") != kind or obj.get("apiVersion") != api_version:
                    return 400, _status(400, "BadRequest", f"body is {obj.get('kind')}, path is {kind}")
                meta = obj.setdefault("metadata", {})
                if kind == "Deployment" and "replicas" not in obj["spec"]:
                    # defaulted to 1 on create; later kept as the manager that set it (the HPA) left it
                    obj["spec"]["replicas"] = current["spec"]["replicas"] if current else 1
                if current is None:
                    meta.update(uid=str(uuid.uuid4()), generation=1, resourceVersion="1")
                else:
                    old = current["metadata"]
                    changed = obj.get("spec") != current.get("spec")
                    meta.update(
                        uid=old["uid"],
                        generation=old["generation"] + (1 if changed else 0),
                        resourceVersion=str(int(old["resourceVersion"]) + 1),
                    )
                    if kind == "Service":
                        obj["spec"]["clusterIP"] = current["spec"].get("clusterIP", "10.0.0.10")

                meta.update(creationTimestamp="2026-01-01T00:00:00Z", selfLink=path)
                if namespace:
                    meta["namespace"] = namespace
                if kind == "Secret":
                    obj["data"] = {k: _b64(v) for k, v in obj.pop("stringData", {}).items()}
                self.objects[path] = obj
                self._reads[path] = 0
                return (201 if current is None else 200), copy.deepcopy(obj)
            if method == "DELETE":
                if current is None:
                    return 404, _not_found(path)
                del self.objects[path]
                if kind == "Service":  # the API server answers a Service's deletion with the object
                    return 200, current
                return 200, {**_status(200, "", ""), "status": "Success", "details": {"name": found[3], "kind": kind}}
            return 405, _status(405, "MethodNotAllowed", f"{method} not supported here")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                status, payload = fake.handle(self.command, path, query, dict(self.headers), body)
                # A pod's log is the one answer that is text, not JSON.
                text = isinstance(payload, str)
                data = payload.encode() if text else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _not_found(path: str) -> dict[str, Any]:
    return _status(404, "NotFound", f"{path} not found")
