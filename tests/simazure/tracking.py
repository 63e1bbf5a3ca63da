"""The workspace as an MLflow tracking server, as Azure ML studio shows runs.

The workspace advertises ``azureml://<region>.api.ml.azure.<domain>/mlflow/v1.0/<workspace>``. Azure ML's MLflow
plugin (azureml-mlflow) turns it into HTTPS calls to that host: the MLflow REST API under
``/mlflow/v2.0/<workspace>/api/2.0/mlflow/...``, which a real MLflow tracking server answers here (SQLite, on
loopback), and the run history's artifact API under ``/history/v1.0/<workspace>/
experiments/<experiment>/runs/<run>/artifacts``, which keeps each file in the workspace storage account's
``azureml`` container (Azurite) and hands out SAS URLs to read and write it. A run's artifact URI is
``azureml://<host>/mlflow/v2.0/<workspace>/experiments/<experiment>/runs/<run>/artifacts``, the form the
plugin reads. A job gets a run of its own and the ``MLFLOW_*`` variables naming it, as on Azure ML.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from azurite import signed_url
from fake_azureml import WS_PATH
from fakes import Call, FakeTransport

from tests.simazure.runner import free_port, start_process

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

    from tests.simazure.entra import Entra

ROOT = Path(__file__).resolve().parents[2]
# MLflow's server pins its own pandas and Flask: it runs from a venv of its own (made by scripts/test.sh).
MLFLOW = Path(os.environ.get("SIMAZURE_MLFLOW", ROOT / ".tools" / "mlflow" / "bin" / "mlflow"))
ARTIFACTS_CONTAINER = "azureml"
SCOPE = r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices/workspaces/[^/]+"
RUN_ARTIFACTS = r"/history/v1\.0" + SCOPE + r"/experiments/[^/]+/runs/(?P<run>[^/]+)/artifacts"
START_TIMEOUT_SECONDS = 120.0


class Tracking:
    """The workspace's MLflow tracking host: the MLflow REST API, the run history's artifacts, runs of jobs."""

    def __init__(
        self, state_dir: Path, host: str, artifacts: ContainerClient, blob_url: str, entra: Entra, audience: str
    ) -> None:
        self.state_dir = state_dir
        self.host = host
        self.artifacts = artifacts
        self.blob_url = blob_url
        self.entra = entra
        self.audience = audience  # of the tokens the front accepts
        self._port: int | None = None
        self._ready = False
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def uri(self) -> str:
        """The workspace's ``mlFlowTrackingUri``."""
        return f"azureml://{self.host}/mlflow/v1.0{WS_PATH}"

    def install(self, t: FakeTransport) -> None:
        api = r"/mlflow/v[12]\.0" + SCOPE + r"(?P<api>/api/2\.0/mlflow/.+)"
        for method in ("GET", "POST", "PATCH", "DELETE"):
            t.on(method, api, self._mlflow)
        t.on("POST", RUN_ARTIFACTS + r"/batch/metadata", self._create_artifacts)
        t.on("GET", RUN_ARTIFACTS, self._list_artifacts)
        t.on("GET", RUN_ARTIFACTS + r"/contentinfo", self._content_info)

    # --- the MLflow server --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the MLflow server in the background (its first start takes seconds: it makes its database)."""
        if not MLFLOW.is_file():
            raise RuntimeError(f"{MLFLOW} is missing: run scripts/test.sh (it makes the MLflow server's venv)")
        root = self.state_dir / "mlflow"
        root.mkdir(parents=True, exist_ok=True)
        self._port = free_port()
        args = [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(self._port), "--workers", "1"]
        args += ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--no-serve-artifacts"]
        args += ["--default-artifact-root", (root / "default-artifacts").as_uri()]
        self._process = start_process(args, root, {"PATH": os.environ["PATH"], "HOME": str(root)}, root / "log")

    def _server(self) -> int:
        """The MLflow server's port, once it answers."""
        with self._lock:
            assert self._process is not None and self._port is not None, "Tracking.start() first"
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not self._ready:
                if self._process.poll() is not None:
                    raise RuntimeError(f"the MLflow server exited; see {self.state_dir / 'mlflow' / 'log'}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the MLflow server did not answer in {START_TIMEOUT_SECONDS:.0f} s")
                with contextlib.suppress(OSError):
                    self._ready = _request(self._port, "GET", "/health")[0] == 200
                if not self._ready:
                    time.sleep(0.2)
            return self._port

    def call(self, method: str, api: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """One MLflow REST call (``api`` from ``/api/2.0/mlflow/``); its status and JSON answer."""
        if method == "POST" and api.startswith("/api/2.0/mlflow/experiments/create") and body is not None:
            # Azure ML keeps a run's artifacts in the run history, under an azureml:// URI naming the run.
            name = quote(str(body.get("name", "")), safe="")
            body.setdefault("artifact_location", f"azureml://{self.host}/mlflow/v2.0{WS_PATH}/experiments/{name}/runs")
        status, raw = _request(self._server(), method, api, body)
        return status, json.loads(raw) if raw else {}

    def _mlflow(self, call: Call) -> tuple[int, Any]:
        query = urlsplit(call.url).query
        api = call.path[call.path.index("/api/2.0/mlflow/") :] + (f"?{query}" if query else "")
        return self.call(call.method, api, call.body if isinstance(call.body, dict) else None)

    def start_run(self, experiment: str, name: str) -> tuple[str, str]:
        """A run for a job, in its experiment (made if new), as Azure ML starts one: (experiment id, run id)."""
        status, found = self.call("GET", f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={quote(experiment)}")
        if status == 200:
            experiment_id = found["experiment"]["experiment_id"]
        else:
            experiment_id = self.call("POST", "/api/2.0/mlflow/experiments/create", {"name": experiment})[1][
                "experiment_id"
            ]
        now = int(time.time() * 1000)
        body = {"experiment_id": experiment_id, "run_name": name, "start_time": now}
        return experiment_id, self.call("POST", "/api/2.0/mlflow/runs/create", body)[1]["run"]["info"]["run_id"]

    def end_run(self, run_id: str, status: str) -> None:
        """Mark a job's run as the job ended (``FINISHED`` or ``FAILED``)."""
        body = {"run_id": run_id, "status": status, "end_time": int(time.time() * 1000)}
        self.call("POST", "/api/2.0/mlflow/runs/update", body)

    def job_env(self, experiment_id: str, experiment: str, run_id: str) -> dict[str, str]:
        """What Azure ML sets in a job for MLflow: the workspace, the job's run, a token for the compute."""
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_EXPERIMENT_ID": experiment_id,
            "MLFLOW_EXPERIMENT_NAME": experiment,
            "MLFLOW_RUN_ID": run_id,
            "MLFLOW_TRACKING_TOKEN": self.entra.token(self.entra.compute_identity, self.audience),
        }

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)

    # --- the run history's artifacts ----------------------------------------------------------------

    def _blob(self, run: str, path: str) -> str:
        return f"ExperimentRun/dcid.{run}/{path}"

    def _content(self, run: str, path: str, write: bool = False) -> dict[str, Any]:
        url = signed_url(self.blob_url, ARTIFACTS_CONTAINER, self._blob(run, path), write)
        return {"contentUri": url, "origin": "ExperimentRun", "container": f"dcid.{run}", "path": path}

    def _artifact(self, run: str, path: str) -> dict[str, Any]:
        blob = self._blob(run, path)
        return {"artifactId": blob, "origin": "ExperimentRun", "container": f"dcid.{run}", "path": path}

    def _create_artifacts(self, call: Call) -> tuple[int, Any]:
        run = _run(call)
        paths = [p["path"] for p in (call.body or {}).get("paths", [])]
        return 200, {
            "artifacts": {p: self._artifact(run, p) for p in paths},
            "artifactContentInformation": {p: self._content(run, p, write=True) for p in paths},
            "errors": {},
        }

    def _list_artifacts(self, call: Call) -> tuple[int, Any]:
        run = _run(call)
        prefix = self._blob(run, "")
        names = [b.name[len(prefix) :] for b in self.artifacts.list_blobs(name_starts_with=prefix)]
        return 200, {"value": [self._artifact(run, n) for n in names]}  # a last page: no continuationToken

    def _content_info(self, call: Call) -> tuple[int, Any]:
        run, path = _run(call), call.query.get("path", [""])[0]
        if not self.artifacts.get_blob_client(self._blob(run, path)).exists():
            return 404, {"error": {"code": "UserError", "message": f"run {run} has no artifact {path}"}}
        return 200, self._content(run, path)


def _run(call: Call) -> str:
    return call.path.split("/runs/", 1)[1].split("/", 1)[0]


def _request(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
