"""ARM resource providers beside Azure ML: container registries (ACR), container groups (ACI), managed
clusters (AKS); and the long-running operations they hand out."""

from __future__ import annotations

import base64
import copy
import secrets
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from azurite import signed_url
from fakes import Call, FakeTransport

from tests.simazure.containers import Container, ImageError, Images, Runtime, in_background, wait_ready
from tests.simazure.entra import TokenRefused
from tests.simazure.restarts import Supervised, timestamp

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

    from tests.simazure.entra import Entra, Principal
    from tests.simazure.gateway import Gateway
    from tests.simazure.identities import ManagedIdentities
    from tests.simazure.kube import SimKube
    from tests.simazure.rbac import Authorization

RG_PATH = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers"
ACR = RG_PATH + r"/Microsoft.ContainerRegistry/registries/(?P<name>[^/]+)"
ACI = RG_PATH + r"/Microsoft.ContainerInstance/containerGroups/(?P<name>[^/]+)"
AKS = RG_PATH + r"/Microsoft.ContainerService/managedClusters/(?P<name>[^/]+)"
SOURCES_CONTAINER = "acr-build-sources"
# What a repository scope's action needs of the caller's roles on the registry (metadata is AcrPull's too).
REGISTRY_ACTIONS = {
    "pull": "Microsoft.ContainerRegistry/registries/pull/read",
    "metadata_read": "Microsoft.ContainerRegistry/registries/pull/read",
    "push": "Microsoft.ContainerRegistry/registries/push/write",
    "delete": "Microsoft.ContainerRegistry/registries/artifacts/delete",
}
INACCESSIBLE = "The image '{image}' in container group is not accessible. Check the image and registry credential."


def not_found(kind: str, name: str) -> tuple[int, Any]:
    return 404, {"error": {"code": "ResourceNotFound", "message": f"The Resource '{kind}/{name}' was not found."}}


def _name(call: Call, index: int) -> str:
    return call.path.rstrip("/").split("/")[index]


class Operations:
    """Long-running operations: ``Azure-AsyncOperation`` URLs whose status a background task sets."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.status: dict[str, dict[str, Any]] = {}

    def start(self) -> tuple[str, dict[str, str]]:
        op = uuid.uuid4().hex
        url = f"{self.base_url}/operations/{op}"
        # ARM's asynchronous operation resource: id, name, status, start time (end time and error once done).
        self.status[op] = {"id": url, "name": op, "status": "InProgress", "startTime": timestamp()}
        return op, {"Azure-AsyncOperation": url, "Retry-After": "1"}

    def finish(self, op: str, error: str | None = None) -> None:
        done = {**self.status[op], "endTime": timestamp(), "percentComplete": 100.0}
        if error is None:
            self.status[op] = {**done, "status": "Succeeded"}
        else:
            self.status[op] = {**done, "status": "Failed", "error": {"code": "DeploymentFailed", "message": error}}

    def install(self, transport: FakeTransport) -> None:
        transport.on("GET", r"/operations/(?P<op>[0-9a-f]{32})", self._get)

    def _get(self, call: Call) -> tuple[int, Any]:
        found = self.status.get(_name(call, -1))
        return (200, found) if found else (404, {"error": {"code": "NotFound", "message": "no such operation"}})


class Registries:
    """ACR: admin credentials, source upload to Blob, build runs that execute the context's Dockerfile (a failed
    step fails the run; every run's log is a Blob, its SAS link from ``listLogSasUrl``), token exchange on the
    registry's own host."""

    def __init__(
        self,
        names: list[str],
        suffix: str,
        images: Images,
        blobs: ContainerClient,
        blob_url: str,
        entra: Entra,
        audience: str,
        rbac: Authorization,
        group: str,
    ) -> None:
        self.rbac = rbac
        self.group = group  # the resource group the registries are in
        self.suffix = suffix
        self.audience = audience  # ACR takes Entra tokens issued for ARM
        self.images = images
        self.blobs = blobs
        self.blob_url = blob_url
        self.entra = entra
        self.passwords = {name: secrets.token_urlsafe(18) for name in names}
        self.runs: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, str] = {}  # a run's log, also in Blob (``logs/<run>/rawtext.log``)
        self.refresh_tokens: dict[str, Principal] = {}  # who each refresh token was exchanged for
        self.access_tokens: set[str] = set()

    def login_server(self, name: str) -> str:
        return f"{name}.{self.suffix}"

    def install(self, t: FakeTransport) -> None:
        t.on("POST", ACR + r"/listCredentials", self._credentials)
        t.on("POST", ACR + r"/listBuildSourceUploadUrl", self._upload_url)
        t.on("POST", ACR + r"/scheduleRun", self._schedule)
        t.on("GET", ACR + r"/runs/(?P<run>[^/]+)", self._run)
        t.on("POST", ACR + r"/runs/(?P<run>[^/]+)/listLogSasUrl", self._log_url)
        t.on("POST", r"/oauth2/exchange", self._exchange)
        t.on("POST", r"/oauth2/token", self._access_token)
        t.on("GET", r"/acr/v1/(?P<repo>[^/]+)/_tags/(?P<tag>[^/]+)", self._tag)

    def _credentials(self, call: Call) -> tuple[int, Any]:
        name = _name(call, -2)
        if name not in self.passwords:
            return not_found("Microsoft.ContainerRegistry/registries", name)
        value = self.passwords[name]
        return 200, {
            "username": name,
            "passwords": [{"name": "password", "value": value}, {"name": "password2", "value": value}],
        }

    def _upload_url(self, call: Call) -> tuple[int, Any]:
        name = _name(call, -2)
        if name not in self.passwords:
            return not_found("Microsoft.ContainerRegistry/registries", name)
        relative = f"source/{datetime.now(UTC):%Y%m%d}/{uuid.uuid4().hex}.tar.gz"
        return 200, {
            "uploadUrl": signed_url(self.blob_url, SOURCES_CONTAINER, relative, write=True),
            "relativePath": relative,
        }

    def _schedule(self, call: Call) -> tuple[int, Any]:
        name = _path_name(call)
        if name not in self.passwords:
            return not_found("Microsoft.ContainerRegistry/registries", name)
        body = call.body or {}
        run_id = f"ca{len(self.runs) + 1}"
        run = {
            "id": call.path.rsplit("/scheduleRun", 1)[0] + f"/runs/{run_id}",
            "name": run_id,
            "type": "Microsoft.ContainerRegistry/registries/runs",
            "properties": {
                "runId": run_id,
                "status": "Queued",
                "runType": "QuickBuild",
                "provisioningState": "Succeeded",
            },
        }
        self.runs[run_id] = run
        in_background(self._build, name, run_id, body)
        return 200, copy.deepcopy(run)

    def _build(self, registry: str, run_id: str, body: dict[str, Any]) -> None:
        """Execute the build (``Images.build``); the run's status, outputs and log (a Blob) as ACR keeps them."""
        from tests.simazure.containers import ImageBuildError

        props = self.runs[run_id]["properties"]
        started = datetime.now(UTC)
        props.update(status="Running", startTime=started.isoformat())
        server = self.login_server(registry)
        images = [f"{server}/{image}" for image in body.get("imageNames", [])]

        def stamp(text: str) -> str:
            return f"{datetime.now(UTC):%Y/%m/%d %H:%M:%S} {text}"

        log = [stamp("Downloading source code..."), stamp("Finished downloading source code")]
        try:
            with tempfile.TemporaryDirectory() as tmp:
                tarball = Path(tmp) / "context.tar.gz"
                with open(tarball, "wb") as fh:
                    self.blobs.get_blob_client(body["sourceLocation"]).download_blob().readinto(fh)
                log.append(stamp("Launching container with name: build"))
                build_args = {a["name"]: a.get("value", "") for a in body.get("arguments") or []}
                digest, build_log = self.images.build(
                    images,
                    tarball,
                    body.get("dockerFilePath") or "Dockerfile",
                    build_args,
                    push=body.get("isPushEnabled", True),
                )
            log += [build_log.rstrip("\n"), stamp("Successfully executed container: build")]
            outputs = [
                {"registry": server, "repository": i.partition(":")[0], "tag": i.partition(":")[2], "digest": digest}
                for i in body.get("imageNames", [])
            ]
            props.update(status="Succeeded", outputImages=outputs)
            log.append(f"Run ID: {run_id} was successful after {(datetime.now(UTC) - started).seconds}s")
        except Exception as exc:  # the run fails; its log says why
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if isinstance(exc, ImageBuildError):
                log += [exc.log.rstrip("\n"), stamp("Container failed during run: build. No retries remaining.")]
            else:
                log.append(stamp(f"{type(exc).__name__}: {exc}"))
            props.update(status="Failed", runErrorMessage=f"failed during run, err: {reason}"[:300])
            log.append(f"Run ID: {run_id} failed after {(datetime.now(UTC) - started).seconds}s. Error: {reason}")
        props["finishTime"] = datetime.now(UTC).isoformat()
        self.logs[run_id] = "\n".join(log) + "\n"
        self.blobs.upload_blob(self._log_blob(run_id), self.logs[run_id].encode(), overwrite=True)

    @staticmethod
    def _log_blob(run_id: str) -> str:
        return f"logs/{run_id}/rawtext.log"

    def _run(self, call: Call) -> tuple[int, Any]:
        run = self.runs.get(_name(call, -1))
        return (200, copy.deepcopy(run)) if run else not_found("runs", _name(call, -1))

    def _log_url(self, call: Call) -> tuple[int, Any]:
        """``Runs_GetLogSasUrl``: a read-only SAS link to the Blob holding the run's log."""
        run_id = _name(call, -2)
        if run_id not in self.runs:
            return not_found("runs", run_id)
        return 200, {"logLink": signed_url(self.blob_url, self.blobs.container_name, self._log_blob(run_id))}

    def _exchange(self, call: Call) -> tuple[int, Any]:
        form = {k: v[0] for k, v in parse_qs(call.body if isinstance(call.body, str) else "").items()}
        try:
            principal, _ = self.entra.check(f"Bearer {form.get('access_token', '')}", (self.audience,))
        except TokenRefused as refused:
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": refused.message}]}
        token = secrets.token_urlsafe(24)
        self.refresh_tokens[token] = principal
        return 200, {"refresh_token": token}

    def _access_token(self, call: Call) -> tuple[int, Any]:
        form = {k: v[0] for k, v in parse_qs(call.body if isinstance(call.body, str) else "").items()}
        principal = self.refresh_tokens.get(form.get("refresh_token", ""))
        if principal is None:
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid refresh token"}]}
        registry = form.get("service", "").split(".", 1)[0]
        registry_id = f"{self.group}/providers/Microsoft.ContainerRegistry/registries/{registry}"
        for scope in form.get("scope", "").split():  # repository:<name>:<action>,<action>
            for wanted in scope.rpartition(":")[2].split(","):
                action = REGISTRY_ACTIONS.get(wanted, f"Microsoft.ContainerRegistry/registries/{wanted}")
                if not self.rbac.permits(principal, action, registry_id):
                    return 401, {
                        "errors": [
                            {
                                "code": "UNAUTHORIZED",
                                "message": f"authentication required, visit https://aka.ms/acr/authorization for "
                                f"more information. CorrelationId: {uuid.uuid4()}",
                                "detail": [{"Type": "repository", "Name": scope.split(":")[1], "Action": wanted}],
                            }
                        ]
                    }
        token = secrets.token_urlsafe(24)
        self.access_tokens.add(token)
        return 200, {"access_token": token}

    def _tag(self, call: Call) -> tuple[int, Any] | tuple[int, Any, dict[str, str]]:
        """A tag's properties; without an ACR access token, the challenge that says how to get one."""
        server = {k.lower(): v for k, v in call.headers.items()}.get("host", "").split(":")[0]
        _, _, _, repo, _, tag = call.path.split("/")
        auth = {k.lower(): v for k, v in call.headers.items()}.get("authorization", "")
        if auth.removeprefix("Bearer ") not in self.access_tokens:
            realm = f'realm="https://{server}/oauth2/token",service="{server}"'
            challenge = f'Bearer {realm},scope="repository:{repo}:metadata_read"'
            return 401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": challenge}
        digest = self.images.tags.get(f"{server}/{repo}:{tag}")
        if digest is None:
            return 404, {"errors": [{"code": "TAG_UNKNOWN", "message": f"{repo}:{tag} is not known"}]}
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        attributes = {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True, "listEnabled": True}
        return 200, {
            "registry": server,
            "imageName": repo,
            "tag": {
                "name": tag,
                "digest": digest,
                "createdTime": when,
                "lastUpdateTime": when,
                "signed": False,
                "changeableAttributes": attributes,
            },
        }


def _path_name(call: Call) -> str:
    return call.path.split("/registries/", 1)[1].split("/", 1)[0]


class ContainerGroups:
    """ACI: a group is created (its image pulled and its container started) as a long-running operation, and
    is then provisioned whatever its app does: the container runs under the group's restart policy
    (tests/simazure/restarts.py), its state, restarts and events in the instance view, its output at
    ``.../containers/{name}/logs``. A PUT on a running group updates it in place (the container restarted, the
    address kept) unless it changes what Azure only changes by delete and create. Secure environment values are
    never returned; delete stops the container. The group's user-assigned identities are the only ones its
    container gets tokens for (through its host's IMDS endpoint), and the only ones it may pull images with."""

    def __init__(
        self,
        runtime: Runtime,
        registries: Registries,
        gateway: Gateway,
        ops: Operations,
        identities: ManagedIdentities,
        rbac: Authorization,
    ) -> None:
        self.rbac = rbac
        self.runtime = runtime
        self.registries = registries
        self.gateway = gateway
        self.ops = ops
        self.identities = identities
        self.groups: dict[str, dict[str, Any]] = {}
        self.supervised: dict[str, Supervised] = {}
        self.imds: dict[str, str] = {}  # group -> its IMDS path
        self._lock = threading.Lock()

    def install(self, t: FakeTransport) -> None:
        t.on("PUT", ACI, self._put)
        t.on("GET", ACI, self._get)
        t.on("DELETE", ACI, self._delete)
        t.on("GET", ACI + r"/containers/(?P<container>[^/]+)/logs", self._logs)

    def _identity_error(self, body: dict[str, Any]) -> tuple[int, Any] | None:
        """ARM's answer to an identity block it refuses; else None, and each identity's ids filled in."""
        identity = body.get("identity") or {}
        kind = identity.get("type", "None")
        assigned = identity.get("userAssignedIdentities") or {}
        if kind not in ("None", "UserAssigned", "SystemAssigned", "SystemAssigned, UserAssigned"):
            return 400, {"error": {"code": "InvalidIdentityType", "message": f"identity type '{kind}' is invalid"}}
        if bool(assigned) != ("UserAssigned" in kind):
            return 400, {
                "error": {
                    "code": "BadRequestFormat",
                    "message": "userAssignedIdentities must be given exactly when the identity type includes "
                    "UserAssigned.",
                }
            }
        for resource_id in assigned:
            principal = self.identities.principal(resource_id)
            if principal is None:
                return 400, {
                    "error": {
                        "code": "FailedIdentityOperation",
                        "message": f"Identity operation for resource '{resource_id}' failed: the user assigned "
                        "identity was not found.",
                    }
                }
            assigned[resource_id] = {"principalId": principal.object_id, "clientId": principal.client_id}
        return None

    def _pull_error(self, body: dict[str, Any], group: str) -> str | None:
        """Why the group's images cannot be pulled (ACI's message), in resource group ``group``; None if they can:
        the registry's admin password, or an identity of the group holding a role that pulls from it."""
        props = body.get("properties", {})
        creds = {c.get("server"): c for c in props.get("imageRegistryCredentials") or []}
        assigned = {k.lower() for k in ((body.get("identity") or {}).get("userAssignedIdentities") or {})}
        for container in props.get("containers", []):
            image = container["properties"]["image"]
            server, _, _ = image.partition("/")
            registry = server.split(".", 1)[0]
            cred = creds.get(server)
            known = registry in self.registries.passwords and server == self.registries.login_server(registry)
            puller = self.identities.principal(str(cred.get("identity"))) if cred else None
            registry_id = f"{group}/providers/Microsoft.ContainerRegistry/registries/{registry}"
            allowed = cred is not None and (
                (
                    str(cred.get("identity")).lower() in assigned  # only an identity of the group pulls
                    and puller is not None
                    and self.rbac.permits(puller, "Microsoft.ContainerRegistry/registries/pull/read", registry_id)
                )
                or (
                    cred.get("username") == registry and cred.get("password") == self.registries.passwords.get(registry)
                )
            )
            if not known or not allowed:
                return INACCESSIBLE.format(image=image)
            try:
                self.runtime.images.pull(image)
            except ImageError:
                return INACCESSIBLE.format(image=image)
        return None

    def _put(self, call: Call) -> tuple[int, Any, dict[str, str]] | tuple[int, Any]:
        name = _name(call, -1)
        body = copy.deepcopy(call.body)
        refused = self._identity_error(body)
        if refused:
            return refused
        error = self._pull_error(body, "/".join(call.path.split("/")[:5]))
        if error:
            return 400, {"error": {"code": "InaccessibleImage", "message": error}}
        with self._lock:
            old = self.groups.get(name)
            running = self.supervised.get(name)
            if old is not None and old["properties"]["provisioningState"] in ("Creating", "Updating"):
                return 409, {"error": {"code": "Conflict", "message": f"container group {name} is being changed"}}
            update = old is not None and running is not None and running.state == "Running"
            if update and _fixed(old) != _fixed(body):  # Azure's message, as users have reported it
                return 400, {
                    "error": {
                        "code": "InvalidContainerGroupUpdate",
                        "message": f"The updates on container group '{name}' are invalid. If you are going to "
                        "update the os type, restart policy, network profile, CPU, memory or GPU resources for a "
                        "container group, you must delete it first and then create a new one.",
                    }
                }
            props = body["properties"]
            props.setdefault("restartPolicy", "Always")
            ip = props.get("ipAddress") or {}
            zone = self.registries.suffix.split(".", 1)[1]
            fqdn = f"{ip.get('dnsNameLabel')}.{body['location']}.azurecontainer.{zone}"
            # An update keeps the group's address (its host stays); a new group gets one.
            address = old["properties"]["ipAddress"]["ip"] if update and old else None
            ip.update(fqdn=fqdn, ip=address or f"20.{len(self.groups) % 250}.0.{(len(self.groups) * 7) % 250 + 1}")
            props.update(ipAddress=ip, provisioningState="Updating" if update else "Creating")
            props["instanceView"] = {"state": "Pending", "events": []}
            body.update(id=call.path, name=name, type="Microsoft.ContainerInstance/containerGroups")
            self.groups[name] = body
        if old is not None:
            self._stop(name, old)
        op, headers = self.ops.start()
        in_background(self._create, name, op)
        return (200 if update else 201), self._public(body), headers

    def _create(self, name: str, op: str) -> None:
        body = self.groups[name]
        props = body["properties"]
        spec = props["containers"][0]["properties"]
        env = {
            e["name"]: e.get("value") if e.get("value") is not None else e.get("secureValue", "")
            for e in spec.get("environmentVariables", [])
        }
        assigned = (body.get("identity") or {}).get("userAssignedIdentities") or {}
        principals = [p for p in map(self.identities.principal, assigned) if p is not None]
        if principals:  # the host's IMDS, serving the group's identities alone
            self.imds[name] = self.identities.entra.assign_host(principals)
            env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = self.ops.base_url + self.imds[name]
        ip = props["ipAddress"]

        def routed(container: Container) -> None:  # a restarted container listens on a new loopback port
            for host in (ip["fqdn"], ip["ip"]):
                self.gateway.route(host, container.port)

        supervised = Supervised(lambda: self.runtime.start(spec["image"], env), props["restartPolicy"], routed)
        try:
            container = supervised.begin()
        except Exception as exc:
            props.update(provisioningState="Failed", instanceView={"state": "Failed", "events": []})
            self.ops.finish(op, f"container group {name} failed to start: {exc}")
            return
        with self._lock:
            self.supervised[name] = supervised
        props["provisioningState"] = "Succeeded"
        self.ops.finish(op)
        wait_ready(container)

    @property
    def running(self) -> dict[str, Container]:
        """Each group's container of the moment."""
        return {name: s.container for name, s in self.supervised.items() if s.container is not None}

    def _public(self, body: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(body)
        supervised = self.supervised.get(out["name"])
        if supervised is not None and out["properties"]["provisioningState"] == "Succeeded":
            out["properties"]["instanceView"] = {"state": supervised.state, "events": []}
            out["properties"]["containers"][0]["properties"]["instanceView"] = supervised.view()
        for container in out["properties"].get("containers", []):
            for variable in container["properties"].get("environmentVariables", []):
                variable.pop("secureValue", None)
        for cred in out["properties"].get("imageRegistryCredentials") or []:
            cred.pop("password", None)
        return out

    def _get(self, call: Call) -> tuple[int, Any]:
        body = self.groups.get(_name(call, -1))
        return (
            (200, self._public(body))
            if body
            else not_found("Microsoft.ContainerInstance/containerGroups", _name(call, -1))
        )

    def _logs(self, call: Call) -> tuple[int, Any]:
        """``Containers_ListLogs``: the current run's output, its last ``tail`` lines when asked."""
        group, container = call.path.split("/")[-4], call.path.split("/")[-2]
        body = self.groups.get(group)
        names = [c["name"] for c in (body or {}).get("properties", {}).get("containers", [])]
        if body is None or container not in names:
            return not_found("Microsoft.ContainerInstance/containerGroups/containers", container)
        supervised = self.supervised.get(group)
        tail = call.query.get("tail", [None])[0]
        return 200, {"content": supervised.logs(int(tail) if tail else None) if supervised else ""}

    def _stop(self, name: str, body: dict[str, Any]) -> None:
        """Stop the group's container, release its identity endpoint and its address."""
        with self._lock:
            supervised = self.supervised.pop(name, None)
        if supervised is not None:
            supervised.stop()
        self.identities.entra.release_host(self.imds.pop(name, ""))
        ip = body["properties"].get("ipAddress") or {}
        for host in (ip.get("fqdn"), ip.get("ip")):
            if host:
                self.gateway.unroute(host)

    def _delete(self, call: Call) -> tuple[int, Any] | tuple[int, Any, dict[str, str]]:
        name = _name(call, -1)
        body = self.groups.pop(name, None)
        if body is None:
            return 204, b""
        self._stop(name, body)
        return 200, self._public(body)

    def stop_all(self) -> None:
        for supervised in list(self.supervised.values()):
            supervised.stop()


def _fixed(body: dict[str, Any]) -> Any:
    """What of a group only a delete and a new create may change (Azure's list of properties that require it)."""
    props = body["properties"]
    return (
        props.get("osType"),
        props.get("restartPolicy", "Always"),
        props.get("subnetIds"),
        [c["properties"].get("resources") for c in props.get("containers", [])],
    )


class ManagedClusters:
    """AKS: the clusters that exist, and their user kubeconfig (pointing at the Kubernetes stand-in)."""

    def __init__(self, clusters: dict[str, SimKube]) -> None:
        self.clusters = clusters

    def install(self, t: FakeTransport) -> None:
        t.on("POST", AKS + r"/listClusterUserCredential", self._user_credentials)
        t.on("GET", AKS, self._get)

    def _get(self, call: Call) -> tuple[int, Any]:
        name = _name(call, -1)
        kube = self.clusters.get(name)
        if kube is None:
            return not_found("Microsoft.ContainerService/managedClusters", name)
        return 200, {
            "id": call.path,
            "name": name,
            "location": "westeurope",
            "type": "Microsoft.ContainerService/ManagedClusters",
            "properties": {
                "provisioningState": "Succeeded",
                "fqdn": kube.url,
                "kubernetesVersion": "1.30.0",
                "oidcIssuerProfile": {"enabled": True, "issuerURL": kube.issuer},
                "securityProfile": {"workloadIdentity": {"enabled": True}},
            },
        }

    def _user_credentials(self, call: Call) -> tuple[int, Any]:
        name = _name(call, -2)
        kube = self.clusters.get(name)
        if kube is None:
            return not_found("Microsoft.ContainerService/managedClusters", name)
        value = base64.b64encode(kube.kubeconfig().encode()).decode()
        return 200, {"kubeconfigs": [{"name": "clusterUser", "value": value}]}
