"""A small stateful Azure ML control plane on a FakeTransport: models, jobs, computes, schedules."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

from fakes import Call, FakeTransport

SUB, RG, WS = "00000000-0000-0000-0000-000000000001", "rg-mlops", "ws-mlops"
WS_PATH = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
SYSTEM_DATA = {
    "createdAt": "2026-01-01T00:00:00Z",
    "createdBy": "tester",
    "createdByType": "User",
    "lastModifiedAt": "2026-01-01T00:00:00Z",
}


class FakeAzureML:
    """Answers the workspace's REST calls the way the service does, keeping what was created."""

    def __init__(self, job_statuses: list[str] | None = None) -> None:
        self.transport = FakeTransport()
        self.models: dict[str, dict[int, dict[str, Any]]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.computes: dict[str, dict[str, Any]] = {}
        self.schedules: dict[str, dict[str, Any]] = {}
        self.components: list[dict[str, Any]] = []
        self.job_statuses = job_statuses or ["Queued", "Running", "Completed"]
        self._status_iters: dict[str, Iterator[str]] = {}
        t, ws = self.transport, WS_PATH
        t.on("GET", rf"{ws}", self._workspace)
        t.on("GET", rf"{ws}/models/(?P<n>[^/]+)/versions", self._list_versions)
        t.on("GET", rf"{ws}/models/(?P<n>[^/]+)", self._container)
        t.on("GET", rf"{ws}/models/(?P<n>[^/]+)/versions/(?P<v>\d+)", self._get_version)
        t.on("PUT", rf"{ws}/models/(?P<n>[^/]+)/versions/(?P<v>\d+)", self._put_version)
        t.on("GET", rf"{ws}/datastores/workspaceblobstore", self._datastore)
        t.on("GET", rf"{ws}/datastores", lambda c: (200, {"value": [self._datastore(c)[1]]}))
        t.on("PUT", rf"{ws}/environments/(?P<n>[^/]+)/versions/(?P<v>[^/]+)", self._put_environment)
        t.on("PUT", rf"{ws}/components/(?P<n>[^/]+)/versions/(?P<v>[^/]+)", self._put_component)
        t.on("PUT", rf"{ws}/jobs/(?P<n>[^/]+)", self._put_job)
        t.on("GET", rf"{ws}/jobs/(?P<n>[^/]+)", self._get_job)
        t.on("POST", rf"{ws}/jobs/(?P<n>[^/]+)/cancel", self._cancel_job)
        t.on("GET", r"/operations/job-cancel/(?P<n>[^/]+)", self._cancel_status)
        t.on("GET", rf"{ws}/computes/(?P<n>[^/]+)", self._get_compute)
        t.on("PUT", rf"{ws}/computes/(?P<n>[^/]+)", self._put_compute)
        t.on("GET", r"/operations/compute-create", lambda c: (200, {"status": "Succeeded"}))
        t.on("PUT", rf"{ws}/schedules/(?P<n>[^/]+)", self._put_schedule)
        t.on("GET", r"/operations/schedule-create", lambda c: (200, {"status": "Succeeded"}))
        t.on("GET", rf"{ws}/schedules/(?P<n>[^/]+)", self._get_schedule)
        t.on("DELETE", rf"{ws}/schedules/(?P<n>[^/]+)", self._delete_schedule)
        t.on("GET", r"/operations/schedule-delete", lambda c: (200, {"status": "Succeeded"}))

    @staticmethod
    def _part(call: Call, index: int) -> str:
        return call.path.rstrip("/").split("/")[index]

    def _workspace(self, call: Call) -> tuple[int, Any]:
        return 200, {
            "id": WS_PATH,
            "name": WS,
            "location": "westeurope",
            "type": "Microsoft.MachineLearningServices/workspaces",
            "properties": {"discoveryUrl": "https://westeurope.api.azureml.ms/discovery", "mlFlowTrackingUri": ""},
        }

    def _datastore(self, call: Call) -> tuple[int, Any]:
        return 200, {
            "id": f"{WS_PATH}/datastores/workspaceblobstore",
            "name": "workspaceblobstore",
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "datastoreType": "AzureBlob",
                "accountName": "stmlops",
                "containerName": "azureml-blobstore-123",
                "endpoint": "core.windows.net",
                "protocol": "https",
                "isDefault": True,
                "credentials": {"credentialsType": "AccountKey"},
                "serviceDataAccessAuthIdentity": "None",
            },
            "systemData": SYSTEM_DATA,
        }

    # models ---------------------------------------------------------------------------------------
    def _version_json(self, name: str, version: int) -> dict[str, Any]:
        return copy.deepcopy(self.models[name][version])

    def _list_versions(self, call: Call) -> tuple[int, Any]:
        name = self._part(call, -2)
        versions = [self._version_json(name, v) for v in sorted(self.models.get(name, {}))]
        if "createdtime desc" in call.query.get("$orderBy", [""])[0]:
            versions.reverse()
        top = call.query.get("$top")
        if top:
            versions = versions[: int(top[0])]
        return 200, {"value": versions}

    def _container(self, call: Call) -> tuple[int, Any]:
        name = self._part(call, -1)
        if name not in self.models:
            return 404, {"error": {"code": "UserError", "message": f"model {name} not found"}}
        latest = max(self.models[name])
        return 200, {
            "id": f"{WS_PATH}/models/{name}",
            "name": name,
            "properties": {"latestVersion": str(latest), "nextVersion": str(latest + 1), "isArchived": False},
            "systemData": SYSTEM_DATA,
        }

    def _get_version(self, call: Call) -> tuple[int, Any]:
        name, version = self._part(call, -3), int(self._part(call, -1))
        if version not in self.models.get(name, {}):
            return 404, {"error": {"code": "UserError", "message": "not found"}}
        return 200, self._version_json(name, version)

    def _put_version(self, call: Call) -> tuple[int, Any]:
        name, version = self._part(call, -3), int(self._part(call, -1))
        props = dict(call.body["properties"])
        props.setdefault("flavors", {})
        self.models.setdefault(name, {})[version] = {
            "id": f"{WS_PATH}/models/{name}/versions/{version}",
            "name": str(version),
            "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
            "properties": props,
            "systemData": SYSTEM_DATA,
        }
        return 200, self._version_json(name, version)

    # environments, jobs ---------------------------------------------------------------------------
    def _put_environment(self, call: Call) -> tuple[int, Any]:
        name, version = self._part(call, -3), self._part(call, -1)
        return 200, {
            "id": f"{WS_PATH}/environments/{name}/versions/{version}",
            "name": version,
            "properties": {**call.body["properties"], "osType": "Linux"},
            "systemData": SYSTEM_DATA,
        }

    def _put_component(self, call: Call) -> tuple[int, Any]:
        name, version = self._part(call, -3), self._part(call, -1)
        self.components.append(call.body)
        return 201, {
            "id": f"{WS_PATH}/components/{name}/versions/{version}",
            "name": version,
            "properties": copy.deepcopy(call.body["properties"]),
            "systemData": SYSTEM_DATA,
        }

    def _put_job(self, call: Call) -> tuple[int, Any]:
        name = self._part(call, -1)
        body = copy.deepcopy(call.body)
        body["properties"]["status"] = "NotStarted"
        body["properties"].setdefault("services", {})
        body.update({"id": f"{WS_PATH}/jobs/{name}", "name": name, "systemData": SYSTEM_DATA})
        self.jobs[name] = body
        self._status_iters[name] = itertools.chain(self.job_statuses, itertools.repeat(self.job_statuses[-1]))
        return 201, body

    def _get_job(self, call: Call) -> tuple[int, Any]:
        name = self._part(call, -1)
        if name not in self.jobs:
            return 404, {"error": {"code": "UserError", "message": "job not found"}}
        self.jobs[name]["properties"]["status"] = next(self._status_iters[name])
        return 200, copy.deepcopy(self.jobs[name])

    def _cancel_job(self, call: Call) -> tuple[int, Any] | tuple[int, Any, dict[str, str]]:
        """Jobs_Cancel: 202 and a ``Location`` to poll, as Azure ML answers; the job ends Canceled."""
        name = self._part(call, -2)
        if name not in self.jobs:
            return 404, {"error": {"code": "UserError", "message": "job not found"}}
        self._cancel(name)
        location = f"https://management.azure.com/operations/job-cancel/{name}"
        return 202, b"", {"Location": location, "Retry-After": "1"}

    def _cancel(self, name: str) -> None:
        self._status_iters[name] = itertools.repeat("Canceled")

    def _cancel_status(self, call: Call) -> tuple[int, Any]:
        """The cancel's ``Location``: 202 while the job is still stopping, 200 once it has."""
        return (200, {}) if self._canceled(self._part(call, -1)) else (202, {})

    def _canceled(self, name: str) -> bool:
        return True

    # computes -------------------------------------------------------------------------------------
    def _get_compute(self, call: Call) -> tuple[int, Any]:
        name = self._part(call, -1)
        if name not in self.computes:
            return 404, {"error": {"code": "ResourceNotFound", "message": f"compute {name} not found"}}
        return 200, copy.deepcopy(self.computes[name])

    def _put_compute(self, call: Call) -> tuple[int, Any]:
        name = self._part(call, -1)
        body = copy.deepcopy(call.body)
        body["properties"]["provisioningState"] = "Succeeded"
        body.update({"id": f"{WS_PATH}/computes/{name}", "name": name})
        self.computes[name] = body
        return 201, body, {"Azure-AsyncOperation": "https://management.azure.com/operations/compute-create"}

    # schedules ------------------------------------------------------------------------------------
    def _put_schedule(self, call: Call) -> tuple[int, Any]:
        name = self._part(call, -1)
        body = copy.deepcopy(call.body)
        body["properties"]["provisioningState"] = "Succeeded"
        body.update({"id": f"{WS_PATH}/schedules/{name}", "name": name, "systemData": SYSTEM_DATA})
        self.schedules[name] = body
        return 201, body, {"Azure-AsyncOperation": "https://management.azure.com/operations/schedule-create"}

    def _delete_schedule(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        self.schedules.pop(self._part(call, -1), None)
        return 202, b"", {"Azure-AsyncOperation": "https://management.azure.com/operations/schedule-delete"}

    def _get_schedule(self, call: Call) -> tuple[int, Any]:
        name = self._part(call, -1)
        if name not in self.schedules:
            return 404, {"error": {"code": "UserError", "message": "schedule not found"}}
        return 200, copy.deepcopy(self.schedules[name])
