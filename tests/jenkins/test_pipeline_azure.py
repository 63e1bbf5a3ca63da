"""The Azure path run whole: main builds with TARGET=azure on the simulated Azure, every sh step in order as the
local builds run them, then production's own scoring logs read back by a nightly build, then rollback twice.

Build 1 trains as an Azure ML command job, registers version 1, builds the scoring image in ACR, runs it on ACI
(QA) and AKS (production), each smoke-tested; build 2 does the same with a better model. Production then scores
shifted inputs through a pooled keep-alive client; its pods' logs reach Blob Storage (Azurite); the nightly build
reports drift from them, so `train --if-due` retrains on Azure ML and releases version 3. `rollback` twice then
serves versions 2 and 1. The Azure secrets are bound only where the plan's withCredentials binds them, and never
appear in a step's output.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import requests
from jenkins_agent import Agent, agent_environment, new_workspace

from diabetes_mlops.data import FEATURES, load_builtin

if TYPE_CHECKING:
    from tests.simazure.service import SimAzure

PARAMS = {"TARGET": "azure", "SKIP_APPROVAL": "true"}
SCORING_KEY = "jenkins-scoring-key-4711"
SERVICE_PRINCIPAL = ("AZURE_SUBSCRIPTION_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID")
SHIFTED_ROWS = 300


def azure_agent(simazure: SimAzure, tmp_path: Path) -> Agent:
    """An agent whose node carries the Azure settings (not the secrets: those are in Jenkins' store)."""
    env = agent_environment(tmp_path)
    client = simazure.client_env()
    env.update({k: v for k, v in client.items() if k not in SERVICE_PRINCIPAL})
    env.update(
        {
            "DIABETES_MLOPS_AZURE_STORAGE_ACCOUNT_URL": simazure.blob_url,
            # a batch of scoring logs leaves the pod after a second, not a minute: the nightly build comes soon
            "DIABETES_MLOPS_SCORING_LOG_UPLOAD_INTERVAL": "1",
            "DIABETES_MLOPS_TRACKING": "false",
            # a rollout that stalls fails the step with the kit's diagnosis, before the agent's step timeout
            "DIABETES_MLOPS_AZURE_DEPLOY_TIMEOUT": "300",
        }
    )
    credentials = {
        "azure-service-principal": {k: client[k] for k in SERVICE_PRINCIPAL},
        "diabetes-scoring-key": {"DIABETES_MLOPS_SCORING_KEY": SCORING_KEY},
    }
    workspace, commit = new_workspace(tmp_path, "workspace")
    return Agent(
        workspace,
        env,
        commit,
        params=PARAMS,
        node_env={"DIABETES_MLOPS_NIGHTLY_TARGET": "azure"},
        credentials=credentials,
    )


def cli(agent: Agent, *args: str) -> subprocess.CompletedProcess[str]:
    """diabetes-mlops as an operator runs it on the agent, with the service principal and the scoring key."""
    secrets = {k: v for values in agent.credentials.values() for k, v in values.items()}
    saved = dict(agent.env)
    agent.env.update({**secrets, "DIABETES_MLOPS_REGISTRY_BACKEND": "azureml"})
    try:
        return agent.cli(*args)
    finally:
        agent.env.clear()
        agent.env.update(saved)


def production_url(agent: Agent) -> str:
    listed = cli(agent, "--json", "endpoints", "--target", "azure")
    assert listed.returncode == 0, listed.stderr
    [production] = [e for e in json.loads(listed.stdout)["endpoints"] if e["env"] == "production"]
    assert production["healthy"], production
    return production["url"].rstrip("/")


def score_shifted(simazure: SimAzure, url: str, version: int) -> None:
    """Production scores rows whose bmi is 8 higher than in training, ten rows a request, over one pooled
    keep-alive connection through the cloud's network (the load balancer's address)."""
    frame = load_builtin()
    rows = frame.loc[: SHIFTED_ROWS - 1, list(FEATURES)].copy()
    rows["bmi"] += 8.0
    key = simazure.vault.current("scoring-key-production")  # what a client of production reads from Key Vault
    with requests.Session() as session:
        session.trust_env = False
        session.proxies = {"http": simazure.gateway.url, "https": simazure.gateway.url}
        session.verify = str(simazure.ca.ca_file)
        for start in range(0, SHIFTED_ROWS, 10):
            batch = rows.iloc[start : start + 10].to_numpy().tolist()
            answer = session.post(
                f"{url}/score", json={"data": batch}, headers={"Authorization": f"Bearer {key}"}, timeout=30
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-model-version"] == str(version) and len(answer.json()["result"]) == 10


def logged_rows(simazure: SimAzure) -> int:
    """Rows of production's own requests in Blob Storage (the smoke tests' are marked synthetic)."""
    from azure.storage.blob import ContainerClient

    container = ContainerClient.from_connection_string(
        simazure.azurite.connection_string, "scoring-logs", connection_verify=str(simazure.ca.ca_file)
    )
    if not container.exists():
        return 0
    rows = 0
    for blob in container.list_blobs(name_starts_with="scoring/"):
        for line in container.download_blob(blob.name).readall().splitlines():
            record = json.loads(line)
            rows += 0 if record.get("synthetic") else len(record["inputs"])
    return rows


def test_azure_main_builds_release_score_drift_retrain_and_roll_back(simazure: SimAzure, tmp_path: Path) -> None:
    agent = azure_agent(simazure, tmp_path)
    secret = agent.credentials["azure-service-principal"]["AZURE_CLIENT_SECRET"]

    first = agent.build(1)
    assert first.plan["result"] == "SUCCESS" and first.plan["description"] is None
    assert first.exit_codes["Release/Release QA#1"] == first.exit_codes["Release/Release production#1"] == 0
    # The job is named for the Jenkins job, branch and build, its studio page in the log, and waited for.
    job = re.search(
        r"Azure ML job (diabetes-train-diabetes-mlops-main-build-1-[0-9a-f]{6}): studio https://",
        first.logs["Retrain/Train#1"],
    )
    assert job is not None, first.logs["Retrain/Train#1"]
    assert f"Azure ML job {job.group(1)}: Completed" in first.logs["Retrain/Train#1"]
    run_dir = agent.workspace / ".mlops" / "runs" / "build-1"
    assert json.loads((run_dir / "train.json").read_text())["metrics"]["r2"] > 0.3  # downloaded from the job
    qa = json.loads((run_dir / "release-qa.json").read_text())
    production = json.loads((run_dir / "release-production.json").read_text())
    assert qa["version"] == production["version"] == 1 and production["released"]
    image = qa["qa"]["image"]
    assert "@sha256:" in image and production["production"]["image"] == image  # QA's digest runs on AKS

    agent.env["DIABETES_MLOPS_ALPHA"] = "5"
    second = agent.build(2)
    assert second.plan["result"] == "SUCCESS" and second.plan["description"] is None
    assert json.loads((agent.workspace / ".mlops/runs/build-2/release-production.json").read_text())["version"] == 2

    url = production_url(agent)
    score_shifted(simazure, url, version=2)
    deadline = time.monotonic() + 120
    while logged_rows(simazure) < SHIFTED_ROWS and time.monotonic() < deadline:
        time.sleep(0.5)
    assert logged_rows(simazure) == SHIFTED_ROWS  # every row once, from the pods to Blob Storage

    agent.env["DIABETES_MLOPS_ALPHA"] = "20"
    nightly = agent.build(3, cause="timer")
    assert nightly.plan["result"] == "SUCCESS", nightly.plan
    assert nightly.exit_codes["Retrain/Train#1"] == 4  # drift, from production's own logs
    assert nightly.plan["description"].startswith("Drift in the scoring logs")
    assert nightly.exit_codes["Retrain/Train#2"] == 0  # so a retrain was due, and ran as an Azure ML job
    report = (agent.workspace / ".mlops/runs/build-3/drift/drift.md").read_text()
    assert f"logged rows: {SHIFTED_ROWS} " in report and "bmi" in report
    released = json.loads((agent.workspace / ".mlops/runs/build-3/release-production.json").read_text())
    assert released["released"] and released["version"] == 3
    agent.env.pop("DIABETES_MLOPS_ALPHA")

    for expected in (2, 1):
        rolled = cli(agent, "--json", "rollback", "--target", "azure")
        assert rolled.returncode == 0 and json.loads(rolled.stdout)["version"] == expected, rolled.stderr
        url = production_url(agent)
        smoke = cli(agent, "smoke-test", url, "--env", "production", "--target=azure", f"--expect-version={expected}")
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    aliases = json.loads(cli(agent, "--json", "models", "list").stdout)["aliases"]
    assert aliases == {"champion": 3, "production": 1}

    for build in (first, second, nightly):
        for step, log in build.logs.items():
            assert secret not in log and SCORING_KEY not in log, step
            assert not [key for key in simazure.vault.values() if key in log], step
    assert simazure.gateway.refused == []
