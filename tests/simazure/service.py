"""The simulated Azure: one HTTPS front on 127.0.0.1 (Entra ID, ARM metadata, Azure ML, ACR, ACI, AKS), the
gateway that gives its names a meaning on loopback, Azurite for Blob, and Kubernetes API stand-ins.

Clients reach it only through the kit's cloud setting (the ARM metadata URL in ``metadata_url``) and the
environment in ``client_env()``; nothing in the package knows it exists.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "azure"))  # the fakes this grows from

from azurite import Azurite  # noqa: E402
from fake_azureml import RG, SUB, WS  # noqa: E402
from fakes import Call, FakeTransport  # noqa: E402

from tests.simazure.blobfront import BlobFront  # noqa: E402
from tests.simazure.containers import Images, Runtime  # noqa: E402
from tests.simazure.entra import Entra, TokenRefused  # noqa: E402
from tests.simazure.gateway import Gateway  # noqa: E402
from tests.simazure.identities import ManagedIdentities  # noqa: E402
from tests.simazure.keyvault import KeyVault  # noqa: E402
from tests.simazure.kube import SimKube  # noqa: E402
from tests.simazure.ml import BLOB_CONTAINER, SimAzureML  # noqa: E402
from tests.simazure.openapi import Specs  # noqa: E402
from tests.simazure.rbac import Authorization, arm_action, denial, linked_denial  # noqa: E402
from tests.simazure.resources import (  # noqa: E402
    SOURCES_CONTAINER,
    ContainerGroups,
    ManagedClusters,
    Operations,
    Registries,
)
from tests.simazure.runner import Venvs  # noqa: E402
from tests.simazure.tls import TestCA, serve_tls  # noqa: E402
from tests.simazure.tracking import ARTIFACTS_CONTAINER, Tracking  # noqa: E402

DOMAIN = "simazure.test"
STORAGE_SUFFIX = f"core.{DOMAIN}"
ACR_SUFFIX = f"azurecr.{DOMAIN}"
REGION = "westeurope"
TRACKING_HOST = f"{REGION}.api.ml.azure.{DOMAIN}"  # Azure ML's regional API, as in ``<region>.api.ml.azure.cn``
LIST_API_VERSION = "2019-05-01"  # ARM's metadata at this version: every cloud it knows, as a list
TENANT = "72f988bf-0000-4000-8000-00000000f00d"
ACR_NAME = "acrmlops"
AKS_NAME = "aks-mlops"
VAULT_NAME = "kv-mlops"
VAULT_SUFFIX = f"vault.{DOMAIN}"
WHEELHOUSE = Path(os.environ.get("SIMAZURE_WHEELHOUSE", ROOT / ".tools" / "wheelhouse"))
PUBLIC_PATHS = ("/metadata/", "/msi/", "/imds/", "/oauth2/", "/acr/")  # identity endpoints and ACR check their own
ENTRA_PATH = re.compile(r"/[^/]+/(?:v2\.0/\.well-known/|oauth2/v2\.0/|discovery/)")  # a tenant's login endpoints
TRACKING_PATHS = ("/mlflow/", "/history/")  # the workspace's regional API (TRACKING_HOST)
SCORING_IDENTITY = "id-diabetes-scoring"  # the user-assigned identity docs/azure.md has scoring containers use
SCORING_ACCOUNT = "diabetes-scoring"  # the AKS service account federated with it, in namespace AKS_NAMESPACE
AKS_NAMESPACE = "diabetes"
STORAGE_ACCOUNT = "devstoreaccount1"


class Scopes:
    """The resource ids roles are assigned at."""

    group = f"/subscriptions/{SUB}/resourceGroups/{RG}"
    workspace = f"{group}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
    registry = f"{group}/providers/Microsoft.ContainerRegistry/registries/{ACR_NAME}"
    storage = f"{group}/providers/Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}"
    # The workspace's default datastore: here a container of the same account as the scoring logs.
    datastore = f"{storage}/blobServices/default/containers/{BLOB_CONTAINER}"
    cluster = f"{group}/providers/Microsoft.ContainerService/managedClusters/{AKS_NAME}"
    namespace = f"{cluster}/namespaces/{AKS_NAMESPACE}"
    scoring_identity = f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{SCORING_IDENTITY}"
    vault = f"{group}/providers/Microsoft.KeyVault/vaults/{VAULT_NAME}"


# Who holds which role where, as docs/azure.md sets a subscription up: (principal, role, scope).
DOCUMENTED_ROLES = (
    ("jenkins", "AzureML Data Scientist", Scopes.workspace),
    ("jenkins", "AzureML Compute Operator", Scopes.workspace),
    ("jenkins", "AcrPush", Scopes.registry),
    ("jenkins", "Container Registry Tasks Contributor", Scopes.registry),
    ("jenkins", "Azure Container Instances Contributor Role", Scopes.group),  # the QA container group
    ("jenkins", "Managed Identity Operator", Scopes.scoring_identity),
    ("jenkins", "Azure Kubernetes Service Cluster User Role", Scopes.cluster),
    ("jenkins", "Azure Kubernetes Service RBAC Writer", Scopes.namespace),
    ("jenkins", "Storage Blob Data Contributor", Scopes.datastore),  # model files, job inputs, the wheel
    ("jenkins", "Storage Blob Data Reader", Scopes.storage),  # the scoring logs drift reads
    ("jenkins", "Key Vault Secrets Officer", Scopes.vault),  # creates and rotates each environment's scoring key
    ("compute", "AzureML Data Scientist", Scopes.workspace),
    ("compute", "Storage Blob Data Contributor", Scopes.datastore),  # the pipeline's register step uploads
    ("scoring", "AcrPull", Scopes.registry),
    ("scoring", "Storage Blob Data Contributor", Scopes.storage),
)


class SimAzure:
    """Start, use (``client_env()``, ``settings()``), stop. State (venvs, jobs, images) lives in ``state_dir``."""

    def __init__(self, state_dir: Path, wheelhouse: Path = WHEELHOUSE) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.wheelhouse = wheelhouse
        self.ca = TestCA(self.state_dir / "tls")
        self.entra = Entra(TENANT)
        self.rbac = Authorization(self.entra)
        self.scopes = Scopes()
        self.principal = self.entra.add_principal()  # Jenkins' service principal
        self.identities = ManagedIdentities(self.entra, REGION)
        self.scoring_identity = self.identities.create(Scopes.scoring_identity)
        holders = {
            "jenkins": self.principal,
            "compute": self.entra.compute_identity,
            "scoring": self.identities.principal(Scopes.scoring_identity),
        }
        for who, role, scope in DOCUMENTED_ROLES:
            self.rbac.assign(holders[who], role, scope)  # type: ignore[arg-type]
        self.gateway = Gateway()
        self.specs = Specs.default()
        # What of an exchange did not fit Azure's published spec of the operation: a simulator that answers
        # what Azure never would (or takes what Azure refuses) fails the test that saw it (tests/conftest.py).
        self.spec_problems: list[str] = []
        self.transport = FakeTransport()  # replaced by the workspace's at start: every route on one table
        self.front = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.front.daemon_threads = True
        serve_tls(self.front, self.ca.server_files("front", "127.0.0.1", "localhost", f"*.{ACR_SUFFIX}", TRACKING_HOST))
        self.azurite = Azurite(
            self.state_dir / "azurite",
            tls=self.ca.server_files("azurite", "127.0.0.1", f"*.blob.{STORAGE_SUFFIX}"),
        )
        self.venvs = Venvs(self.state_dir / "venvs", wheelhouse)
        self._threads: list[threading.Thread] = []

    # --- addresses ----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.front.server_address[1]}"

    @property
    def ml_audience(self) -> str:
        """Azure ML's token audience in this cloud (``https://ml.azure.com`` in the public one)."""
        return f"https://ml.azure.{DOMAIN}"

    @property
    def metadata_url(self) -> str:
        """What ``azure_cloud`` is set to: the ARM metadata document of this cloud."""
        return f"{self.base_url}/metadata/endpoints?api-version=2022-09-01"

    @property
    def blob_url(self) -> str:
        return f"https://devstoreaccount1.blob.{STORAGE_SUFFIX}"

    def metadata(self, call: Call | None = None) -> dict[str, Any] | list[dict[str, Any]]:
        """ARM's metadata document: this cloud, or at api-version 2019-05-01 the list of clouds (only this one)."""
        if call is not None and call.api_version == LIST_API_VERSION:
            return [self.metadata()]
        return {
            "name": "SimAzure",
            "portal": f"https://portal.azure.{DOMAIN}/",
            "resourceManager": f"{self.base_url}/",
            "authentication": {
                "loginEndpoint": f"{self.base_url}/",
                "audiences": [f"{self.base_url}/"],
                "tenant": "common",
                "identityProvider": "AAD",
            },
            "suffixes": {"storage": STORAGE_SUFFIX, "acrLoginServer": ACR_SUFFIX, "keyVaultDns": VAULT_SUFFIX},
        }

    def network_env(self) -> dict[str, str]:
        """What any process needs to reach this cloud: the gateway as proxy, the test CA as the only trust."""
        return {
            "HTTPS_PROXY": self.gateway.url,
            "HTTP_PROXY": self.gateway.url,
            "https_proxy": self.gateway.url,
            "http_proxy": self.gateway.url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "SSL_CERT_FILE": str(self.ca.ca_file),
            "REQUESTS_CA_BUNDLE": str(self.ca.ca_file),
        }

    def client_env(self) -> dict[str, str]:
        """The environment of a build agent using this cloud: network, a service principal (as Jenkins'
        ``azureServicePrincipal`` binding exports it) and the kit's Azure settings."""
        return {
            **self.network_env(),
            "AZURE_CLIENT_ID": self.principal.client_id,
            "AZURE_CLIENT_SECRET": self.principal.secret,
            "AZURE_TENANT_ID": TENANT,
            "AZURE_SUBSCRIPTION_ID": SUB,
            "DIABETES_MLOPS_AZURE_CLOUD": self.metadata_url,
            "DIABETES_MLOPS_AZURE_SUBSCRIPTION_ID": SUB,
            "DIABETES_MLOPS_AZURE_RESOURCE_GROUP": RG,
            "DIABETES_MLOPS_AZURE_WORKSPACE": WS,
            "DIABETES_MLOPS_AZURE_LOCATION": REGION,
            "DIABETES_MLOPS_AZURE_ACR_NAME": ACR_NAME,
            "DIABETES_MLOPS_AZURE_AKS_CLUSTER": AKS_NAME,
            "DIABETES_MLOPS_AZURE_AKS_NAMESPACE": AKS_NAMESPACE,
            "DIABETES_MLOPS_AZURE_ACI_IDENTITY": self.scoring_identity["id"],
            "DIABETES_MLOPS_AZURE_IDENTITY_CLIENT_ID": self.scoring_identity["properties"]["clientId"],
            "DIABETES_MLOPS_AZURE_AKS_SERVICE_ACCOUNT": SCORING_ACCOUNT,
            "DIABETES_MLOPS_AZURE_KEY_VAULT": VAULT_NAME,
        }

    def job_env(self) -> dict[str, str]:
        """What a process on the compute cluster sees: a host's environment and the cluster's managed identity
        (Azure ML compute's endpoint for it)."""
        return {
            **self.host_env(),
            "MSI_ENDPOINT": f"{self.base_url}/msi/token",
            "MSI_SECRET": self.entra.msi_secret,
        }

    def host_env(self) -> dict[str, str]:
        """What any host of this cloud gives its processes (a container, before its group or pod adds an
        identity): the network and the package index (the wheelhouse stands for PyPI: nothing is fetched from
        outside)."""
        return {
            **self.network_env(),
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(self.wheelhouse),
            "PIP_NO_COMPILE": "1",
            # MLflow reports usage to its own service on the internet, which nothing here may reach.
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }

    # --- life ---------------------------------------------------------------------------------------

    def start(self) -> SimAzure:
        from azure.storage.blob import BlobServiceClient

        if not self.wheelhouse.is_dir():
            raise RuntimeError(f"{self.wheelhouse} is missing: run scripts/test.sh (it downloads the wheelhouse)")
        self.azurite.start()
        service = BlobServiceClient.from_connection_string(
            self.azurite.connection_string, connection_verify=str(self.ca.ca_file)
        )
        for name in (BLOB_CONTAINER, SOURCES_CONTAINER, ARTIFACTS_CONTAINER):
            service.get_container_client(name).create_container()
        self.blob_front = BlobFront(
            self.entra,
            self.rbac,
            Scopes.storage,
            self.ca.server_files("blob-front", "127.0.0.1", f"*.blob.{STORAGE_SUFFIX}"),
            self.ca.ca_file,
            self.azurite.port,
        )
        self.gateway.route(f"*.blob.{STORAGE_SUFFIX}", self.blob_front.port)
        self.vault = KeyVault(
            VAULT_NAME,
            Scopes.vault,
            VAULT_SUFFIX,
            self.entra,
            self.rbac,
            self.base_url,
            self.ca.server_files("vault", "127.0.0.1", f"*.{VAULT_SUFFIX}"),
            self.specs,
            self.spec_problems,
        )
        self.gateway.route(f"*.{VAULT_SUFFIX}", self.vault.port)
        self.gateway.route(f"*.{ACR_SUFFIX}", self.front.server_address[1])
        self.gateway.route(TRACKING_HOST, self.front.server_address[1])
        self._threads = [
            threading.Thread(target=s.serve_forever, daemon=True)
            for s in (self.front, self.gateway.server, self.blob_front.server, self.vault.server)
        ]
        for thread in self._threads:
            thread.start()

        images = Images(self.state_dir / "images")
        self.runtime = Runtime(images, self.venvs, self.state_dir / "containers", self.host_env())
        self.ops = Operations(self.base_url)
        self.tracking = Tracking(
            self.state_dir,
            TRACKING_HOST,
            service.get_container_client(ARTIFACTS_CONTAINER),
            self.blob_url,
            self.entra,
            self.base_url,
        )
        self.tracking.start()
        self.workspace = SimAzureML(
            self.state_dir,
            service.get_container_client(BLOB_CONTAINER),
            STORAGE_SUFFIX,
            REGION,
            self.job_env(),
            self.venvs,
            self.tracking,
            self.ml_audience,
            self.entra.compute_identity,
            Scopes.storage,
            TENANT,
        )
        self.transport = self.workspace.transport
        self.registries = Registries(
            [ACR_NAME],
            ACR_SUFFIX,
            images,
            service.get_container_client(SOURCES_CONTAINER),
            self.blob_url,
            self.entra,
            f"{self.base_url}/",
            self.rbac,
            Scopes.group,
        )
        self.container_groups = ContainerGroups(
            self.runtime, self.registries, self.gateway, self.ops, self.identities, self.rbac
        )
        kube_tls = self.ca.server_files("aks", "127.0.0.1")
        self.kube = SimKube(
            self.runtime,
            self.gateway,
            "20.61.0.10",
            self.entra,
            kube_tls,
            self.ca.ca_file,
            issuer=f"https://{REGION}.oic.prod-aks.{DOMAIN}/{TENANT}/{uuid.uuid4()}/",
            authority=f"{self.base_url}/",
            tokens_dir=self.state_dir / "kube-tokens",
            rbac=self.rbac,
            cluster_id=Scopes.cluster,
        )
        self.kube.create_namespace(AKS_NAMESPACE)
        self.kube.thread.start()
        # As docs/azure.md sets it up: the scoring identity trusts the cluster's service account for scoring.
        self.identities.federate(
            self.scoring_identity["id"],
            "aks-scoring",
            self.kube.issuer,
            f"system:serviceaccount:{AKS_NAMESPACE}:{SCORING_ACCOUNT}",
        )
        clusters = ManagedClusters({AKS_NAME: self.kube})
        for part in (
            self.ops,
            self.registries,
            self.container_groups,
            clusters,
            self.tracking,
            self.identities,
            self.rbac,
        ):
            part.install(self.transport)
        self.entra.install(self.transport, self.base_url)
        self.transport.on("GET", r"/metadata/endpoints", lambda call: (200, self.metadata(call)))
        return self

    def stop(self) -> None:
        self.tracking.stop()
        self.container_groups.stop_all()
        self.kube.stop_pods()
        self.kube.server.shutdown()
        self.front.shutdown()
        self.front.server_close()
        self.blob_front.server.shutdown()
        self.vault.server.shutdown()
        self.gateway.stop()
        self.azurite.stop()

    def __enter__(self) -> SimAzure:
        return self.start()

    def __exit__(self, *args: object) -> None:
        self.stop()

    # --- the front ----------------------------------------------------------------------------------

    def _authorize(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any] | None:
        """None when the request may go on; else Azure's 401 or 403 answer. Each surface takes the tokens of its
        own audience (ARM only ARM's, the workspace's MLflow and run history ARM's or Azure ML's); an ARM
        request needs a role assignment permitting its operation on its scope, and one that gives a resource a
        user-assigned identity needs ``assign/action`` on that identity too."""
        if path.startswith(PUBLIC_PATHS) or ENTRA_PATH.match(path):
            return None
        audiences = (
            (f"{self.base_url}/", self.ml_audience) if path.startswith(TRACKING_PATHS) else (f"{self.base_url}/",)
        )
        try:
            principal, _ = self.entra.check(headers.get("authorization"), audiences)
        except TokenRefused as refused:
            return refused.answer()
        if path.startswith("/subscriptions/") and path.split("/")[2] != SUB:
            return 404, {
                "error": {"code": "SubscriptionNotFound", "message": f"subscription {path.split('/')[2]} not found"}
            }
        operation = arm_action(method, path)
        if operation is None:
            return None
        action, scope = operation
        if not self.rbac.permits(principal, action, scope):
            return denial(principal, action, scope)
        linked = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
        for identity in _assigned_identities(method, raw):
            if not self.rbac.permits(principal, linked, identity):
                return linked_denial(principal, action, scope, linked, identity)
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                from azure.core.rest import HttpRequest

                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                path = self.path.partition("?")[0]
                denied = sim._authorize(self.command, path, headers, raw)
                if denied is not None:
                    answer = json.dumps(denied[1]).encode()
                    sim.spec_problems += sim.specs.check(self.command, self.path, raw, denied[0], answer)
                    self._reply(denied[0], answer, {"Content-Type": "application/json"})
                    return
                request = HttpRequest(
                    self.command, f"{sim.base_url}{self.path}", headers=dict(self.headers), content=raw or None
                )
                response = sim.transport.send(request)
                sim.spec_problems += sim.specs.check(
                    self.command, self.path, raw, response.status_code, response.content
                )
                out = {k: v.replace("https://management.azure.com", sim.base_url) for k, v in response.headers.items()}
                if ("Azure-AsyncOperation" in out or "Location" in out) and "Retry-After" not in out:
                    out["Retry-After"] = "1"
                self._reply(response.status_code, response.content, out)

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("x-ms-request-id", str(uuid.uuid4()))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def _assigned_identities(method: str, raw: bytes) -> list[str]:
    """The user-assigned identities a PUT gives its resource."""
    if method != "PUT" or not raw:
        return []
    try:
        body = json.loads(raw)
    except ValueError:
        return []
    identity = body.get("identity") if isinstance(body, dict) else None
    return list((identity or {}).get("userAssignedIdentities") or {}) if isinstance(identity, dict) else []
