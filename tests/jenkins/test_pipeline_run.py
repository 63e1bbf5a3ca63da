"""Run the sh steps of a local main build, in order, in a copy of the repository, as Jenkins would: twice."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import stat
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jenkins_harness import BUILD_STAGES, ROOT, plan, running, steps_named

PARAMS = {"TARGET": "local", "SKIP_APPROVAL": "true"}
JOB = "diabetes-mlops/main"
# what the agent's environment would not carry into a build
DROPPED = ("DIABETES_MLOPS_", "PYTEST_", "COV_CORE_", "VIRTUAL_ENV", "PIP_", "COVERAGE_")


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_repository(dest: Path) -> str:
    """Copy the tracked and the untracked non-ignored files of the repository to ``dest``, a git work tree as
    Jenkins' checkout is (tools such as ruff then skip what .gitignore lists); the HEAD commit."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        source = ROOT / os.fsdecode(raw)
        if source.is_file():
            target = dest / os.fsdecode(raw)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    return head.stdout.strip()


@dataclass
class Build:
    """One executed build: its final plan and the exit code of each sh step run."""

    plan: dict[str, Any]
    exit_codes: dict[str, int] = field(default_factory=dict)


class Agent:
    """A Jenkins agent stand-in: one workspace, an environment, and sh steps run like Jenkins' durable tasks."""

    def __init__(self, workspace: Path, env: dict[str, str], git_commit: str) -> None:
        self.workspace = workspace
        self.env = env
        self.git_commit = git_commit
        self.tmp = workspace.parent / f"{workspace.name}@tmp"
        self.tmp.mkdir(exist_ok=True)

    def plan(self, build_number: int, statuses: dict[str, int], cause: str = "scm") -> dict[str, Any]:
        """The harness's plan for this workspace's Jenkinsfile and library, for a build ``cause`` started."""
        return plan(
            self.workspace / "Jenkinsfile",
            library=self.workspace / "jenkins",
            branch="main",
            params=PARAMS,
            statuses=statuses,
            workspace=self.workspace,
            build_number=build_number,
            job_name=JOB,
            git_commit=self.git_commit,
            cause=cause,
        )

    def sh(self, command: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        """Run one sh step: `sh -xe script` (or its own #! interpreter) in the workspace with the step's env."""
        script = self.tmp / f"{command['id'].replace('/', '_').replace(' ', '_').replace(':', '_')}.sh"
        script.write_text(command["script"])
        if command["script"].startswith("#!"):
            script.chmod(script.stat().st_mode | stat.S_IXUSR)
            argv = [str(script)]
        else:
            argv = ["sh", "-xe", str(script)]
        return subprocess.run(
            argv,
            cwd=self.workspace / command["cwd"],
            env={**self.env, **command["env"]},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def build(self, build_number: int, cause: str = "scm") -> Build:
        """Run every sh step in order; a returnStatus step's actual exit code re-plans the rest of the build."""
        statuses: dict[str, int] = {}
        current = self.plan(build_number, statuses, cause)
        done = 0
        codes: dict[str, int] = {}
        while done < len(current["commands"]):
            command = current["commands"][done]
            result = self.sh(command)
            codes[command["id"]] = result.returncode
            done += 1
            output = f"{command['id']} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            if not command["returnStatus"]:
                assert result.returncode == 0, output
            elif result.returncode != command["status"]:
                assert result.returncode in (0, 3) or command["id"].startswith("post:"), output
                statuses[command["id"]] = result.returncode
                replanned = self.plan(build_number, statuses, cause)
                ran = [c["id"] for c in current["commands"][:done]]
                assert [c["id"] for c in replanned["commands"][:done]] == ran
                current = replanned
        return Build(current, codes)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """diabetes-mlops from the build's venv, with the pipeline's home."""
        env = {**self.env, "DIABETES_MLOPS_HOME": str(self.workspace / ".mlops")}
        return subprocess.run(
            [str(self.workspace / ".venv" / "bin" / "diabetes-mlops"), *args],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def archived(workspace: Path, patterns: str) -> set[str]:
    """The workspace files archiveArtifacts would pick for comma-separated Ant patterns."""
    found: set[str] = set()
    for pattern in (p.strip() for p in patterns.split(",")):
        for path in glob.glob(str(workspace / pattern), recursive=True, include_hidden=True):
            if Path(path).is_file():
                found.add(str(Path(path).relative_to(workspace)))
    return found


def assert_junit_passed(path: Path) -> int:
    """The JUnit file holds at least one test and no failure or error; its test count."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = sum(int(s.get("tests", 0)) for s in suites)
    assert tests > 0 and all(int(s.get("failures", 0)) == int(s.get("errors", 0)) == 0 for s in suites), path
    return tests


def test_local_main_builds_release_keep_the_champion_and_roll_back(tmp_path: Path) -> None:
    """Build 1 runs every stage and leaves production answering; build 2 keeps the champion and skips Release;
    build 3, nightly, reports no drift and finds no retrain due, so it trains nothing; builds 4 and 5 release
    better models through both Release stages; `rollback` twice then serves versions 2 and 1."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    commit = copy_repository(workspace)
    qa_port, production_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
    env.update(
        {
            # the agent already has the dependencies: the venv sees them, pip stays offline
            "VENV_ARGS": "--system-site-packages --without-pip",
            "PIP_NO_INDEX": "1",
            "PIP_NO_BUILD_ISOLATION": "0",
            # a small selection: the whole suite would run this test again
            "PYTEST_ARGS": "tests/test_config.py",
            "DATA_TEST_ARGS": "tests/test_schema.py::test_builtin_data_passes "
            "tests/test_schema.py::test_feature_schema_accepts_scoring_input",
            "DIABETES_MLOPS_QA_PORT": str(qa_port),
            "DIABETES_MLOPS_PRODUCTION_PORT": str(production_port),
            # the agent user's own index of running local deployments, not the one of whoever runs the tests
            "DIABETES_MLOPS_RUNTIME_DIR": str(tmp_path / "runtime"),
        }
    )
    agent = Agent(workspace, env, commit)
    try:
        first = agent.build(1)
        assert first.plan["result"] == "SUCCESS" and first.plan["description"] is None
        assert "Release/Release production" in running(first.plan)
        assert first.exit_codes["Retrain/Evaluate#1"] == first.exit_codes["Retrain/Register#1"] == 0
        assert len(first.exit_codes) == len(first.plan["commands"])

        [junit] = steps_named(first.plan, "junit")
        reports = sorted(glob.glob(str(workspace / junit["testResults"])))
        assert [Path(r).name for r in reports] == ["junit-data.xml", "junit-unit.xml"]
        assert all(assert_junit_passed(Path(r)) for r in reports)
        [coverage] = steps_named(first.plan, "recordCoverage")
        coverage_root = ET.parse(workspace / coverage["tools"][0]["pattern"]).getroot()
        assert coverage_root.tag == "coverage" and float(coverage_root.get("line-rate", "0")) > 0

        [archive] = steps_named(first.plan, "archiveArtifacts")
        files = archived(workspace, archive["artifacts"])
        run_dir = ".mlops/runs/build-1"
        for name in [
            "evaluation.json",
            "model_card.md",
            "registered.json",
            "release-qa.json",
            "release-production.json",
        ]:
            assert f"{run_dir}/{name}" in files, name
        assert any(f.endswith(".png") for f in files)
        assert any(f.startswith(f"{run_dir}/bundle/") for f in files)
        assert "reports/validation.json" in files

        assert agent.cli("smoke-test", f"http://127.0.0.1:{production_port}").returncode == 0
        with socket.socket() as sock:  # post cleanup undeployed QA
            assert sock.connect_ex(("127.0.0.1", qa_port)) != 0

        second = agent.build(2)
        assert second.plan["result"] == "SUCCESS"
        assert second.plan["description"].startswith("Champion kept")
        assert second.exit_codes["Retrain/Evaluate#1"] == 3
        build_paths = ["Build"] + [f"Build/{name}" for name in BUILD_STAGES]
        assert running(second.plan) == [*build_paths, "Retrain", "Retrain/Train", "Retrain/Evaluate"]
        assert list(second.exit_codes)[-1] == "post:cleanup#1"
        smoke = agent.cli("smoke-test", f"http://127.0.0.1:{production_port}", "--expect-version", "1")
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr

        nightly = agent.build(3, cause="timer")
        assert nightly.plan["result"] == "SUCCESS"
        assert nightly.plan["description"].startswith("Retrain not due")
        assert nightly.exit_codes["Retrain/Train#1"] == 0  # drift report: too few logged rows (smoke tests excluded)
        assert nightly.exit_codes["Retrain/Train#2"] == 3  # train --if-due: champion current, no drift alarm
        assert running(nightly.plan) == [*build_paths, "Retrain", "Retrain/Train"]
        run_dir_3 = workspace / ".mlops" / "runs" / "build-3"
        assert (run_dir_3 / "drift" / "drift.md").is_file()
        assert sorted(path.name for path in run_dir_3.iterdir()) == ["drift"]  # nothing trained

        # Two better models, each released through Release QA and Release production; then rollback twice.
        for build_number, alpha, version in [(4, "5", 2), (5, "20", 3)]:
            agent.env["DIABETES_MLOPS_ALPHA"] = alpha
            better = agent.build(build_number)
            assert better.plan["result"] == "SUCCESS" and better.plan["description"] is None
            assert better.exit_codes["Release/Release QA#1"] == better.exit_codes["Release/Release production#1"] == 0
            released = json.loads((workspace / f".mlops/runs/build-{build_number}/release-production.json").read_text())
            assert released["released"] and released["version"] == version
            aliases = json.loads(agent.cli("--json", "models", "list").stdout)["aliases"]
            assert aliases == {"champion": version, "production": version}
        agent.env.pop("DIABETES_MLOPS_ALPHA")
        for expected in (2, 1):
            rolled = agent.cli("--json", "rollback")
            assert rolled.returncode == 0 and json.loads(rolled.stdout)["version"] == expected, rolled.stderr
            smoke = agent.cli("smoke-test", f"http://127.0.0.1:{production_port}", "--expect-version", str(expected))
            assert smoke.returncode == 0, smoke.stdout + smoke.stderr
            assert json.loads(agent.cli("--json", "models", "list").stdout)["aliases"]["production"] == expected
    finally:
        if (workspace / ".venv" / "bin" / "diabetes-mlops").exists():
            agent.cli("undeploy", "qa")
            agent.cli("undeploy", "production")


def test_a_feature_branch_plan_has_only_build() -> None:
    """The plan the executor would run for a feature branch holds Build's commands and the tidy-up only."""
    result = plan(branch="feature/docs", params=PARAMS)
    stages = [c["stage"][0] for c in result["commands"]]
    assert stages == ["Build"] * 4 + ["post:cleanup"]
