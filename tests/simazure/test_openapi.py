"""The OpenAPI check on the simulator's exchanges, on bodies as the SDKs send them and Azure answers them."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from tests.simazure.openapi import SPECS_DIR, Specs

ARM = "https://management.azure.com"
RG = "/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/rg-qa"
ACI = f"{ARM}{RG}/providers/Microsoft.ContainerInstance/containerGroups/diabetes-qa?api-version=2023-05-01"
WS = f"{ARM}{RG}/providers/Microsoft.MachineLearningServices/workspaces/ws-mlops"
JOB = f"{WS}/jobs/diabetes-train-1?api-version=2024-01-01-preview"
ARM_ID = f"{RG}/providers/Microsoft.MachineLearningServices/workspaces/ws-mlops"

# What azure-mgmt-containerinstance sent for the kit's QA group (tests/azure/test_aci.py), trimmed.
GROUP: dict[str, Any] = {
    "location": "westeurope",
    "tags": {"managed-by": "diabetes-mlops", "model": "diabetes:3"},
    "properties": {
        "containers": [
            {
                "name": "scoring",
                "properties": {
                    "image": "acrmlops.azurecr.io/diabetes@sha256:" + "3" * 64,
                    "ports": [{"protocol": "TCP", "port": 8000}],
                    "environmentVariables": [
                        {"name": "PORT", "value": "8000"},
                        {"name": "DIABETES_MLOPS_SCORING_KEY", "secureValue": "qa-scoring-key-123"},
                    ],
                    "resources": {"requests": {"memoryInGB": 3.5, "cpu": 2.0}},
                    "readinessProbe": {
                        "httpGet": {"path": "/ready", "port": 8000, "scheme": "http"},
                        "initialDelaySeconds": 5,
                        "periodSeconds": 10,
                    },
                },
            }
        ],
        "imageRegistryCredentials": [
            {"server": "acrmlops.azurecr.io", "username": "acrmlops", "password": "admin-password-1"}
        ],
        "restartPolicy": "Always",
        "ipAddress": {"ports": [{"protocol": "TCP", "port": 8000}], "type": "Public", "dnsNameLabel": "diabetes-qa"},
        "osType": "Linux",
    },
}


def created_group() -> dict[str, Any]:
    """ACI's 201 answer to GROUP: secrets left out, read-only fields in."""
    body = copy.deepcopy(GROUP)
    body.update(
        id=ACI.split("?")[0].removeprefix(ARM), name="diabetes-qa", type="Microsoft.ContainerInstance/containerGroups"
    )
    props = body["properties"]
    props["provisioningState"] = "Creating"
    props["containers"][0]["properties"]["environmentVariables"][1].pop("secureValue")
    props["imageRegistryCredentials"][0].pop("password")
    props["ipAddress"].update(ip="20.1.2.3", fqdn="diabetes-qa.westeurope.azurecontainer.io")
    return body


# A command job as azure-ai-ml sends it (the kit's training job).
COMMAND_JOB: dict[str, Any] = {
    "properties": {
        "jobType": "Command",
        "displayName": "diabetes-mlops train",
        "experimentName": "diabetes-mlops",
        "command": 'diabetes-mlops train --run-dir "${{outputs.run_dir}}"',
        "computeId": f"{ARM_ID}/computes/cpu-cluster",
        "environmentId": f"{ARM_ID}/environments/CliV2AnonymousEnvironment/versions/1",
        "isArchived": False,
        "inputs": {
            "package": {"jobInputType": "uri_file", "mode": "Download", "uri": "azureml://datastores/x/paths/p.whl"}
        },
        "outputs": {"run_dir": {"jobOutputType": "uri_folder", "mode": "ReadWriteMount"}},
        "environmentVariables": {"DIABETES_MLOPS_SEED": "42"},
        "tags": {"created_by": "diabetes-mlops"},
    }
}


@pytest.fixture(scope="module")
def specs() -> Specs:
    return Specs()


def test_a_container_group_put_as_the_sdk_sends_it_passes(specs: Specs) -> None:
    assert specs.covers("PUT", ACI)
    assert specs.operation("PUT", ACI) is not None
    assert specs.check("PUT", ACI, GROUP, 201, created_group()) == []


def test_a_wrong_type_in_the_request_is_reported_at_its_property(specs: Specs) -> None:
    body = copy.deepcopy(GROUP)
    body["properties"]["containers"][0]["properties"]["resources"]["requests"]["cpu"] = "one"
    problems = specs.check("PUT", ACI, body, 201, created_group())
    assert len(problems) == 1
    assert "request body at properties.containers[0].properties.resources.requests.cpu" in problems[0]
    assert "'one' is not of type 'number'" in problems[0]


def test_a_request_without_containers_is_reported(specs: Specs) -> None:
    body = copy.deepcopy(GROUP)
    del body["properties"]["containers"]
    problems = specs.check("PUT", ACI, body, 201, created_group())
    assert problems == [
        f"PUT {ACI.split('?')[0].removeprefix(ARM)} (ContainerGroups_CreateOrUpdate): request body at properties: "
        "'containers' is a required property"
    ]


def test_an_answer_missing_required_fields_or_with_an_unknown_enum_is_reported(specs: Specs) -> None:
    answer = created_group()
    del answer["properties"]["osType"]
    answer["properties"]["restartPolicy"] = "Sometimes"
    problems = specs.check("PUT", ACI, GROUP, 201, answer)
    assert len(problems) == 2
    assert "answer 201 body at properties: 'osType' is a required property" in problems[0]
    assert "answer 201 body at properties.restartPolicy: 'Sometimes' is not one of" in problems[1]


def test_read_only_fields_sent_back_in_a_request_are_tolerated(specs: Specs) -> None:
    # What an SDK sends when it PUTs back a group it read: id, name, provisioningState are read-only.
    assert specs.check("PUT", ACI, created_group(), 200, created_group()) == []


def test_a_command_job_is_checked_as_the_subtype_its_job_type_names(specs: Specs) -> None:
    answer = copy.deepcopy(COMMAND_JOB)
    answer.update(id=f"{ARM_ID}/jobs/diabetes-train-1", name="diabetes-train-1")
    answer["properties"].update(status="NotStarted", services={})
    assert specs.check("PUT", JOB, COMMAND_JOB, 201, answer) == []

    no_command = copy.deepcopy(COMMAND_JOB)
    del no_command["properties"]["command"]
    problems = specs.check("PUT", JOB, no_command, 201, answer)
    assert len(problems) == 1 and "request body at properties: 'command' is a required property" in problems[0]

    as_pipeline = copy.deepcopy(COMMAND_JOB)
    as_pipeline["properties"]["jobType"] = "Pipeline"  # a pipeline job has no command: CommandJob's fields go
    problems = specs.check("PUT", JOB, as_pipeline, 201, answer)
    assert any("Additional properties are not allowed" in p and "'command'" in p for p in problems), problems

    unknown = copy.deepcopy(COMMAND_JOB)
    unknown["properties"]["jobType"] = "Comand"
    problems = specs.check("PUT", JOB, unknown, 201, answer)
    assert any("properties.jobType: 'Comand' is not one of" in p for p in problems), problems


def test_an_undocumented_status_is_reported(specs: Specs) -> None:
    problems = specs.check("PUT", ACI, GROUP, 202, created_group())
    assert len(problems) == 1 and "status 202 is not one of the documented ['200', '201', 'default']" in problems[0]
    # A failure falls back to "default", the error answer, and is checked against it.
    assert specs.check("PUT", ACI, GROUP, 409, {"error": {"code": "Conflict", "message": "busy"}}) == []
    problems = specs.check("PUT", ACI, GROUP, 409, {"error": {"code": 409}})
    assert len(problems) == 1 and "answer 409 body at error.code: 409 is not of type 'string'" in problems[0]


def test_a_missing_required_query_parameter_is_reported(specs: Specs) -> None:
    url = f"{ARM}{RG}/providers/Microsoft.ContainerRegistry/registries/acrmlops/runs/cb1?api-version=2019-06-01-preview"
    run = {"properties": {"runId": "cb1", "status": "Succeeded"}}
    assert specs.check("GET", url, None, 200, run) == []
    operation = specs.operation("GET", url)
    assert operation is not None and operation.operation_id == "Runs_Get"
    without = url.replace("?api-version=", "?x=")
    assert not specs.covers("GET", without)  # no api-version: nothing to pick a spec by


def test_an_unknown_path_under_a_covered_provider_is_reported(specs: Specs) -> None:
    url = f"{WS}/jobz/diabetes-train-1?api-version=2024-01-01-preview"
    assert specs.covers("GET", url)
    assert specs.operation("GET", url) is None
    problems = specs.check("GET", url, None, 200, {})
    assert len(problems) == 1 and "no operation GET on this path in the api-version 2024-01-01-preview" in problems[0]
    # A documented path with a method it does not have is no operation either.
    assert specs.check("PATCH", ACI.replace("containerGroups", "containergroups"), {}, 200, {}) != []


def test_fixed_segments_match_whatever_their_case(specs: Specs) -> None:
    url = ACI.replace("resourceGroups", "resourcegroups").replace(
        "Microsoft.ContainerInstance", "microsoft.containerinstance"
    )
    operation = specs.operation("GET", url)
    assert operation is not None and operation.operation_id == "ContainerGroups_Get"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("PUT", f"{ARM}{RG}/providers/Microsoft.KeyVault/vaults/kv1?api-version=2023-07-01"),
        ("GET", f"{ARM}{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1?api-version=2023-01-31"),
        ("POST", "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"),
        ("GET", f"{ARM}/metadata/endpoints?api-version=2022-09-01"),
        ("POST", "https://acrmlops.azurecr.io/oauth2/exchange?api-version=2021-07-01"),
        ("GET", "https://aks.example/api/v1/namespaces/default/pods"),
        ("GET", f"{WS}?api-version=2024-10-01-preview"),  # Azure ML, at an api-version not vendored
        ("GET", f"{ARM}/operations/0123456789abcdef0123456789abcdef"),
    ],
)
def test_exchanges_no_vendored_spec_is_about_are_not_covered(specs: Specs, method: str, url: str) -> None:
    assert not specs.covers(method, url)
    assert specs.check(method, url, {"anything": 1}, 418, {"at": "all"}) == []


def test_the_acr_and_run_history_data_planes_are_covered(specs: Specs) -> None:
    tag = "https://acrmlops.azurecr.io/acr/v1/diabetes/_tags/1?api-version=2021-07-01"
    answer = {
        "registry": "acrmlops.azurecr.io",
        "imageName": "diabetes",
        "tag": {
            "name": "1",
            "digest": "sha256:" + "3" * 64,
            "createdTime": "2026-01-01T00:00:00Z",
            "lastUpdateTime": "2026-01-01T00:00:00Z",
            "signed": False,
            "changeableAttributes": {"deleteEnabled": True},
        },
    }
    assert specs.check("GET", tag, None, 200, answer) == []
    del answer["tag"]["digest"]
    assert any("'digest' is a required property" in p for p in specs.check("GET", tag, None, 200, answer))
    assert not specs.covers("GET", tag.split("?")[0])  # docker's /v2 and /acr calls carry no api-version
    history = f"https://westeurope.api.azureml.ms/history/v1.0{ARM_ID}/experiments/e/runs/r1/artifacts"
    assert specs.covers("GET", history)
    assert specs.operation("GET", history) is not None


def test_bodies_as_raw_json_text_are_read(specs: Specs) -> None:
    import json

    body = copy.deepcopy(GROUP)
    body["properties"]["osType"] = "Solaris"
    problems = specs.check("PUT", ACI, json.dumps(body).encode(), 201, json.dumps(created_group()))
    assert len(problems) == 1 and "properties.osType: 'Solaris' is not one of" in problems[0]


def test_validators_are_compiled_once(specs: Specs) -> None:
    operation = specs.operation("PUT", ACI)
    assert operation is not None
    assert specs.validator(operation, "request") is specs.validator(operation, "request")
    assert specs.operation("PUT", ACI) is operation
    assert Specs.default() is Specs.default()


def test_every_vendored_file_is_copied_unchanged_and_listed() -> None:
    subset = Path("/work/shared/azure-rest-api-specs-subset")
    vendored = sorted(p.relative_to(SPECS_DIR).as_posix() for p in SPECS_DIR.rglob("*.json"))
    source = (SPECS_DIR / "SOURCE.md").read_text()
    assert vendored
    for relative in vendored:
        assert f"`{relative}`" in source, f"{relative} is not in specs/SOURCE.md"
        size = (SPECS_DIR / relative).stat().st_size
        if subset.is_dir() and (subset / relative).is_file():
            assert (subset / relative).read_bytes() == (SPECS_DIR / relative).read_bytes(), relative
        else:  # copied from upstream: listed with its size and the commit it was read at
            assert re.search(rf"`{re.escape(relative)}` \({size}; upstream `[0-9a-f]{{40}}`\)", source), relative
