"""Azure ML's slice on top of the fake workspace's REST answers: it stores what the SDK sends and *executes*
jobs. A command job downloads its inputs from the datastore (Azurite), runs its command line in a venv built
as its environment says, and uploads its outputs; a pipeline job runs its steps so, in dependency order.
"""

from __future__ import annotations

import copy
import re
import subprocess
import threading
import traceback
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from fake_azureml import SYSTEM_DATA, WS_PATH, FakeAzureML
from fakes import Call

from tests.simazure.runner import BuildFailed, Venvs, leading_pip_install, requirement_digest, venv_env

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

    from tests.simazure.entra import Principal
    from tests.simazure.tracking import Tracking

DATASTORE = "workspaceblobstore"
BLOB_CONTAINER = "azureml-blobstore"
PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
PARENT_BINDING = re.compile(r"\$\{\{\s*parent\.(inputs|jobs)\.([A-Za-z0-9_]+)(?:\.outputs\.([A-Za-z0-9_]+))?\s*\}\}")
JOB_TIMEOUT_SECONDS = 1800
# What Azure ML answers a PUT of a job name in use whose settings differ; only these properties may change.
DUPLICATE_JOB = (
    "A job with this name already exists. If you are trying to create a new job, use a different name. If you are "
    "trying to update an existing job, the existing job's Settings, Inputs, Outputs, Jobs, InputBindings, "
    "OutputBindings cannot be changed. Only description, tags, displayName, properties, and isArchived can be updated."
)
MUTABLE_JOB_PROPERTIES = ("description", "tags", "displayName", "properties", "isArchived")
SERVICE_SET_JOB_PROPERTIES = ("status", "services")


def _settings(props: dict[str, Any]) -> dict[str, Any]:
    """What of a job can never change once it is created."""
    return {k: v for k, v in props.items() if k not in MUTABLE_JOB_PROPERTIES + SERVICE_SET_JOB_PROPERTIES}


class JobError(Exception):
    """A job step failed; the message is what the studio would show."""


class SimAzureML(FakeAzureML):
    """The workspace, its default datastore in Azurite, and jobs that run."""

    def __init__(
        self,
        state_dir: Path,
        container: ContainerClient,
        storage_suffix: str,
        region: str,
        job_env: dict[str, str],
        venvs: Venvs,
        tracking: Tracking,
        studio: str,
        compute_identity: Principal,
        storage_account: str,
        tenant: str,
    ) -> None:
        super().__init__()
        self.studio = studio
        self.compute_identity = compute_identity  # what a compute's system-assigned identity is here
        self.storage_account = storage_account  # the workspace's storage account (its resource id)
        self.tenant = tenant
        self.state_dir = state_dir
        self.container = container
        self.storage_suffix = storage_suffix
        self.region = region
        self.job_env = job_env
        self.venvs = venvs
        self.tracking = tracking
        self.run_ids: dict[str, str] = {}  # job or pipeline step -> its MLflow run
        self.environments: dict[str, dict[str, Any]] = {}
        self.component_specs: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str] = {}
        self.not_responding_polls = 0  # reads of a running job that say NotResponding first, as a lost node does
        self._hiccups: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}  # a running job's command, which cancel kills

    # --- what the service reports -------------------------------------------------------------------

    def _workspace(self, call: Call) -> tuple[int, Any]:
        status, body = super()._workspace(call)
        body["location"] = self.region
        body["properties"]["mlFlowTrackingUri"] = self.tracking.uri
        body["properties"]["storageAccount"] = self.storage_account
        return status, body

    def _put_compute(self, call: Call) -> tuple[int, Any]:
        """A compute asked for a system-assigned identity gets one (the cloud's compute identity): its principal
        holds only the roles assigned to it."""
        answer = super()._put_compute(call)
        identity = answer[1].get("identity") or {}
        if "SystemAssigned" in str(identity.get("type", "")):
            identity.update(principalId=self.compute_identity.object_id, tenantId=self.tenant)
            self.computes[answer[1]["name"]]["identity"] = identity
        return answer

    def _datastore(self, call: Call) -> tuple[int, Any]:
        status, body = super()._datastore(call)
        body["properties"].update(
            accountName="devstoreaccount1", containerName=BLOB_CONTAINER, endpoint=self.storage_suffix
        )
        body["properties"]["credentials"] = {"credentialsType": "None"}
        return status, body

    def _put_environment(self, call: Call) -> tuple[int, Any]:
        status, body = super()._put_environment(call)
        self.environments[body["id"].lower()] = copy.deepcopy(call.body["properties"])
        return status, body

    def _put_component(self, call: Call) -> tuple[int, Any]:
        status, body = super()._put_component(call)
        self.component_specs[body["id"].lower()] = copy.deepcopy(call.body["properties"]["componentSpec"])
        return status, body

    def _put_job(self, call: Call) -> tuple[int, Any]:
        """Create a job, or update what Azure ML lets change of one that exists: a name is the job's for ever."""
        name = self._part(call, -1)
        existing = self.jobs.get(name)
        if existing is not None:
            props = existing["properties"]
            if _settings(props) != _settings(call.body["properties"]):
                return 400, {"error": {"code": "UserError", "message": DUPLICATE_JOB}}
            props.update({k: v for k, v in call.body["properties"].items() if k in MUTABLE_JOB_PROPERTIES})
            return 200, self._job_answer(name)
        status, body = super()._put_job(call)
        body["properties"]["services"]["Studio"] = self._studio(name)
        self._start(name, body["properties"])
        return status, body

    def _studio(self, name: str) -> dict[str, Any]:
        """The job's ``services.Studio``, from which the SDK's ``studio_url`` comes."""
        url = f"{self.studio}/runs/{name}?wsid={WS_PATH}"
        return {"jobServiceType": "Studio", "endpoint": url, "status": None, "errorMessage": None}

    def _start(self, name: str, props: dict[str, Any]) -> None:
        self.status[name] = "NotStarted"
        self._hiccups[name] = self.not_responding_polls
        threading.Thread(target=self._run, args=(name, copy.deepcopy(props)), daemon=True).start()

    def trigger_schedule(self, schedule: str) -> str:
        """Fire a schedule now, as its cron would: submit its job; the new job's name."""
        action = self.schedules[schedule]["properties"]["action"]
        name = f"{schedule}-{uuid.uuid4().hex[:8]}"
        props = copy.deepcopy(action["jobDefinition"])
        self.jobs[name] = {"id": f"{WS_PATH}/jobs/{name}", "name": name, "properties": props, "systemData": SYSTEM_DATA}
        self._start(name, props)
        return name

    def _get_job(self, call: Call) -> tuple[int, Any]:
        name = self._part(call, -1)
        if name not in self.jobs:
            return 404, {"error": {"code": "UserError", "message": f"job {name} not found"}}
        return 200, self._job_answer(name)

    def _cancel(self, name: str) -> None:
        """Stop the job's command, if it runs: the job ends Canceled (not Failed)."""
        with self._lock:
            if self.status.get(name) in ("Completed", "Failed", "Canceled"):
                return
            self.status[name] = "CancelRequested"
            process = self.processes.get(name)
        if process is not None:
            process.kill()

    def _canceled(self, name: str) -> bool:
        return self.status.get(name) != "CancelRequested"

    def _job_answer(self, name: str) -> dict[str, Any]:
        body = copy.deepcopy(self.jobs[name])
        status = self.status[name]
        if status == "Running" and self._hiccups.get(name, 0) > 0:
            self._hiccups[name] -= 1
            status = "NotResponding"
        body["properties"]["status"] = status
        return body

    def job_log(self, name: str) -> str:
        """What the job printed (``user_logs/std_log.txt`` on Azure)."""
        logs = sorted((self.state_dir / "jobs" / name).rglob("std_log.txt"))
        return "\n".join(p.read_text(errors="replace") for p in logs)

    # --- execution ----------------------------------------------------------------------------------

    def _set(self, name: str, status: str) -> None:
        with self._lock:
            if self.status.get(name) == "CancelRequested":
                status = "Canceled"  # whatever the command did once it was told to stop
            if self.status.get(name) != "Canceled":
                self.status[name] = status

    def _run(self, name: str, props: dict[str, Any]) -> None:
        self._set(name, "Queued")
        try:
            workdir = self.state_dir / "jobs" / name
            if props["jobType"] == "Pipeline":
                self._set(name, "Running")
                self._run_pipeline(name, props, workdir)
            else:
                self._run_command(name, props, props["command"], props.get("environmentId", ""), workdir)
            self._set(name, "Completed")
        except JobError as exc:
            self.errors[name] = str(exc)
            self._set(name, "Failed")
        except Exception:  # a defect of the simulator must show as a failed job, with its trace
            self.errors[name] = traceback.format_exc()
            self._set(name, "Failed")

    def _environment(self, environment_id: str) -> dict[str, Any]:
        key = environment_id.lower().removeprefix("azureml:")
        for env_id, spec in self.environments.items():
            if key.endswith(env_id) or env_id.endswith(key):
                return spec
        raise JobError(f"environment {environment_id} not found in the workspace")

    def _venv(self, environment_id: str, install: list[str] | None) -> Path:
        """The venv standing for the job's image: Python as its conda file says, then its pip packages."""
        spec = self._environment(environment_id)
        conda = yaml.safe_load(spec.get("condaFile") or "{}") or {}
        pip_args: list[str] = []
        for dep in conda.get("dependencies", []):
            if isinstance(dep, str) and dep.startswith("python="):
                wanted = dep.split("=", 1)[1]
                if not self.venvs.python_version().startswith(wanted):
                    raise JobError(f"environment asks for Python {wanted}; the image has {self.venvs.python_version()}")
            elif isinstance(dep, dict):
                pip_args += [str(p) for p in dep.get("pip", [])]
        pip_args += install or []
        key = self.venvs.key(spec.get("image", "").encode(), *requirement_digest(pip_args))
        try:
            return self.venvs.get(key, pip_args, self.job_env)
        except BuildFailed as exc:
            raise JobError(f"pip install failed: {exc}") from None

    def _download(self, uri: str, target: Path, is_file: bool) -> Path:
        prefix = uri.partition("/paths/")[2]
        if not prefix:
            raise JobError(f"input {uri} is not a datastore path")
        blobs = [b.name for b in self.container.list_blobs(name_starts_with=prefix.rstrip("/"))]
        if not blobs:
            raise JobError(f"input {uri}: nothing there")
        target.mkdir(parents=True, exist_ok=True)
        for blob in blobs:
            relative = Path(blob).name if is_file else blob[len(prefix.rstrip("/")) :].lstrip("/")
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                self.container.download_blob(blob).readinto(fh)
        return target / Path(blobs[0]).name if is_file else target

    def _upload(self, local: Path, uri: str) -> None:
        prefix = uri.partition("/paths/")[2].strip("/")
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            with open(path, "rb") as fh:
                self.container.upload_blob(f"{prefix}/{path.relative_to(local).as_posix()}", fh, overwrite=True)

    def _run_command(
        self,
        name: str,
        props: dict[str, Any],
        command: str,
        environment_id: str,
        workdir: Path,
    ) -> dict[str, str]:
        """Run one command job or pipeline step; the datastore URIs of its outputs."""

        values: dict[tuple[str, str], str] = {}
        for key, spec in (props.get("inputs") or {}).items():
            kind = spec.get("jobInputType") or spec.get("job_input_type")
            if kind == "literal":
                values[("inputs", key)] = str(spec["value"])
            else:
                values[("inputs", key)] = str(self._download(spec["uri"], workdir / "inputs" / key, kind == "uri_file"))
        outputs: dict[str, str] = {}
        for key, spec in (props.get("outputs") or {}).items():
            local = workdir / "outputs" / key
            local.mkdir(parents=True, exist_ok=True)
            values[("outputs", key)] = str(local)
            outputs[key] = spec.get("uri") or f"azureml://datastores/{DATASTORE}/paths/azureml/{name}/{key}/"

        def fill(match: re.Match[str]) -> str:
            found = values.get((match.group(1), match.group(2)))
            if found is None:
                raise JobError(f"the command refers to {match.group(0)}, which the job does not have")
            return found

        line = PLACEHOLDER.sub(fill, command)
        install, rest = leading_pip_install(line)
        self._set_running(name, "Preparing")
        venv = self._venv(environment_id, install)
        self._set_running(name, "Running")
        env = venv_env(venv, {**self.job_env, **(props.get("environmentVariables") or {})})
        env.update(AZUREML_RUN_ID=name, AZUREML_ARM_WORKSPACE_NAME=WS_PATH.rsplit("/", 1)[-1])
        # Every job is an MLflow run in its experiment, and the job is told which (studio shows it).
        experiment = props.get("experimentName") or "Default"
        experiment_id, run_id = self.tracking.start_run(experiment, props.get("displayName") or name)
        self.run_ids[name] = run_id
        env.update(self.tracking.job_env(experiment_id, experiment, run_id))
        logs = workdir / "user_logs"
        logs.mkdir(parents=True, exist_ok=True)
        if self.status.get(name) in ("CancelRequested", "Canceled"):
            raise JobError(f"{name} was canceled before its command started")
        with open(logs / "std_log.txt", "ab") as log:
            process = subprocess.Popen(["bash", "-c", rest], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
            with self._lock:
                self.processes[name] = process
            try:
                code = process.wait(timeout=JOB_TIMEOUT_SECONDS)
            finally:
                process.kill()
                with self._lock:
                    self.processes.pop(name, None)
        self.tracking.end_run(run_id, "FINISHED" if code == 0 else "FAILED")
        if code != 0:
            raise JobError(f"{name}: the command exited {code}; see user_logs/std_log.txt")
        for key, uri in outputs.items():
            self._upload(workdir / "outputs" / key, uri)
        return outputs

    def _set_running(self, name: str, status: str) -> None:
        if self.status.get(name) not in ("Failed", "Completed"):
            self._set(name, status)

    def _run_pipeline(self, name: str, props: dict[str, Any], workdir: Path) -> None:
        """Run the steps in dependency order; a step's output binds the next step's input."""
        parent_inputs = props.get("inputs") or {}
        steps: dict[str, dict[str, Any]] = copy.deepcopy(props.get("jobs") or {})
        produced: dict[tuple[str, str], str] = {}
        pending = dict(steps)
        while pending:
            ready = [s for s, node in pending.items() if self._bound(node, parent_inputs, produced) is not None]
            if not ready:
                raise JobError(f"pipeline {name}: steps {sorted(pending)} wait on outputs no step makes")
            for step in ready:
                node = pending.pop(step)
                spec = self.component_specs.get(str(node.get("componentId", "")).lower().removeprefix("azureml:"))
                if spec is None:
                    raise JobError(f"pipeline {name}: step {step} has no registered component")
                inputs = self._bound(node, parent_inputs, produced) or {}
                step_props = {
                    "experimentName": props.get("experimentName"),
                    "displayName": step,
                    "inputs": inputs,
                    "outputs": {k: {} for k in (spec.get("outputs") or {})},
                    "environmentVariables": node.get("environment_variables") or node.get("environmentVariables"),
                }
                outputs = self._run_command(
                    f"{name}-{step}", step_props, spec["command"], spec["environment"], workdir / step
                )
                for key, uri in outputs.items():
                    produced[(step, key)] = uri

    @staticmethod
    def _bound(
        node: dict[str, Any], parent: dict[str, Any], produced: dict[tuple[str, str], str]
    ) -> dict[str, Any] | None:
        """The step's inputs with bindings resolved; None while an output it needs is not made yet."""
        out: dict[str, Any] = {}
        for key, spec in (node.get("inputs") or {}).items():
            value = str(spec.get("value", ""))
            match = PARENT_BINDING.fullmatch(value)
            if match is None:
                out[key] = spec
            elif match.group(1) == "inputs":
                out[key] = parent[match.group(2)]
            else:
                uri = produced.get((match.group(2), match.group(3) or ""))
                if uri is None:
                    return None
                out[key] = {"jobInputType": "uri_folder", "uri": uri}
        return out
