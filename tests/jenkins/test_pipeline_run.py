"""Run the sh steps of local main builds, in order, in copies of the repository, as Jenkins would: each build
gets its own JENKINS_NODE_COOKIE, and at its end every process carrying it is killed, as Jenkins' process tree
killer does."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jenkins_harness import BUILD_STAGES, ROOT, plan, running, steps_named

PARAMS = {"TARGET": "local", "SKIP_APPROVAL": "true"}
JOB = "diabetes-mlops/main"
# what the agent's environment would not carry into a build
DROPPED = ("DIABETES_MLOPS_", "PYTEST_", "COV_CORE_", "VIRTUAL_ENV", "PIP_", "COVERAGE_", "PYTHONPATH")


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


def processes_with(variable: bytes) -> list[int]:
    """The processes whose environment holds ``variable`` (NAME=value), read from /proc as Jenkins'
    ProcessTree does; processes of other users (unreadable) are left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if variable in environ.split(b"\0"):
                found.append(int(entry.name))
    return found


def kill_build_processes(cookie: str) -> list[int]:
    """What Jenkins does when a build ends: SIGKILL every process whose environment carries the build's cookie."""
    killed = processes_with(f"JENKINS_NODE_COOKIE={cookie}".encode())
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 10
    while processes_with(f"JENKINS_NODE_COOKIE={cookie}".encode()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return killed


@dataclass
class Build:
    """One executed build: its final plan and the exit code of each sh step run."""

    plan: dict[str, Any]
    exit_codes: dict[str, int] = field(default_factory=dict)
    started: float = 0.0


class Agent:
    """A Jenkins agent stand-in: one workspace, an environment, and sh steps run like Jenkins' durable tasks."""

    def __init__(self, workspace: Path, env: dict[str, str], git_commit: str) -> None:
        self.workspace = workspace
        self.env = env
        self.git_commit = git_commit
        self.tmp = workspace.parent / f"{workspace.name}@tmp"
        self.tmp.mkdir(exist_ok=True)
        self.home = Path(env["HOME"], ".diabetes-mlops", JOB)

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

    def sh(self, command: dict[str, Any], cookie: str) -> subprocess.CompletedProcess[str]:
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
            env={**self.env, **command["env"], "JENKINS_NODE_COOKIE": cookie},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def build(self, build_number: int, cause: str = "scm", may_fail: str | None = None) -> Build:
        """Run every sh step in order; a returnStatus step's actual exit code re-plans the rest of the build, as
        does a failure of the step ``may_fail``. At the end the build's processes are killed as Jenkins does."""
        statuses: dict[str, int] = {}
        started = time.time()
        cookie = uuid.uuid4().hex
        current = self.plan(build_number, statuses, cause)
        done = 0
        codes: dict[str, int] = {}
        try:
            while done < len(current["commands"]):
                current = self._step(current, done, codes, statuses, cookie, may_fail)
                done += 1
        finally:
            kill_build_processes(cookie)
        return Build(current, codes, started)

    def _step(
        self,
        current: dict[str, Any],
        done: int,
        codes: dict[str, int],
        statuses: dict[str, int],
        cookie: str,
        may_fail: str | None,
    ) -> dict[str, Any]:
        """Run command ``done`` of the plan; the plan for the rest of the build."""
        command = current["commands"][done]
        build_number, cause = int(command["env"]["BUILD_NUMBER"]), current["cause"]
        result = self.sh(command, cookie)
        codes[command["id"]] = result.returncode
        output = f"{command['id']} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        if not command["returnStatus"]:
            assert result.returncode == 0 or command["id"] == may_fail, output
        elif result.returncode != command["status"]:
            assert result.returncode in (0, 3) or command["id"].startswith("post:"), output
        if result.returncode != command["status"]:
            statuses[command["id"]] = result.returncode
            replanned = self.plan(build_number, statuses, cause)
            ran = [c["id"] for c in current["commands"][: done + 1]]
            assert [c["id"] for c in replanned["commands"][: done + 1]] == ran
            return replanned
        return current

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """diabetes-mlops from the build's venv, with the pipeline's home: the agent's, outside the workspace."""
        env = {**self.env, "DIABETES_MLOPS_HOME": str(self.home)}
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


def agent_environment(tmp_path: Path) -> dict[str, str]:
    """The agent's environment: its own HOME, offline pip into a venv that sees the installed dependencies, a
    small test selection, free ports for QA and production."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
    env.update(
        {
            "HOME": str(tmp_path / "agent-home"),
            # the agent already has the dependencies: the venv sees them, pip stays offline
            "VENV_ARGS": "--system-site-packages --without-pip",
            "PIP_NO_INDEX": "1",
            "PIP_NO_BUILD_ISOLATION": "0",
            # a small selection: the whole suite would run this test again
            "PYTEST_ARGS": "tests/test_config.py",
            "DATA_TEST_ARGS": "tests/test_schema.py::test_builtin_data_passes "
            "tests/test_schema.py::test_feature_schema_accepts_scoring_input",
            "DIABETES_MLOPS_QA_PORT": str(free_port()),
            "DIABETES_MLOPS_PRODUCTION_PORT": str(free_port()),
            # the agent user's own index of running local deployments, not the one of whoever runs the tests
            "DIABETES_MLOPS_RUNTIME_DIR": str(tmp_path / "runtime"),
        }
    )
    return env


def new_workspace(tmp_path: Path, name: str) -> tuple[Path, str]:
    """A fresh workspace holding a checkout of the repository; the commit."""
    workspace = tmp_path / name
    workspace.mkdir()
    return workspace, copy_repository(workspace)


def test_local_main_builds_release_keep_the_champion_and_roll_back(tmp_path: Path) -> None:
    """Build 1 runs every stage and leaves production answering after Jenkins killed the build's processes;
    build 2, in a fresh workspace of the job on the same agent, finds the champion and keeps it; build 3,
    nightly, reports no drift and finds no retrain due, so it trains nothing; builds 4 and 5 release better
    models through both Release stages; `rollback` twice then serves versions 2 and 1."""
    workspace, commit = new_workspace(tmp_path, "workspace")
    env = agent_environment(tmp_path)
    qa_port, production_port = env["DIABETES_MLOPS_QA_PORT"], env["DIABETES_MLOPS_PRODUCTION_PORT"]
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

        files = set().union(*(archived(workspace, a["artifacts"]) for a in steps_named(first.plan, "archiveArtifacts")))
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

        # the build's processes were killed when it ended: production survives because it does not carry the cookie
        assert agent.cli("smoke-test", f"http://127.0.0.1:{production_port}").returncode == 0
        with socket.socket() as sock:  # Release QA's post cleanup undeployed QA
            assert sock.connect_ex(("127.0.0.1", int(qa_port))) != 0
        assert not (workspace / ".mlops" / "registry").exists()  # the registry lives in the agent's home

        fresh = Agent(new_workspace(tmp_path, "workspace-fresh")[0], env, commit)
        second = fresh.build(2)
        assert second.plan["result"] == "SUCCESS"
        assert second.plan["description"].startswith("Champion kept")
        assert second.exit_codes["Retrain/Evaluate#1"] == 3
        build_paths = ["Build"] + [f"Build/{name}" for name in BUILD_STAGES]
        assert running(second.plan) == [*build_paths, "Retrain", "Retrain/Train", "Retrain/Evaluate"]
        assert list(second.exit_codes)[-1] == "Retrain/Evaluate#1"
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


def published_junit(workspace: Path, build: Build) -> list[str]:
    """The report files the build's junit step would parse: with skipOldReports, only those written during it."""
    [junit] = steps_named(build.plan, "junit")
    found = sorted(glob.glob(str(workspace / junit["testResults"])))
    if junit.get("skipOldReports"):
        found = [path for path in found if Path(path).stat().st_mtime >= build.started]
    return [str(Path(path).relative_to(workspace)) for path in found]


def test_a_failed_build_publishes_no_report_of_an_earlier_build(tmp_path: Path) -> None:
    """Reports left in a kept workspace by an earlier build are neither parsed by junit nor archived when this
    build fails in Code quality."""
    workspace, commit = new_workspace(tmp_path, "workspace")
    stale = {"junit-unit.xml": '<testsuite name="unit-tests" tests="1"/>', "validation.json": '{"stale": true}'}
    for name, text in stale.items():
        (workspace / "reports").mkdir(exist_ok=True)
        (workspace / "reports" / name).write_text(text)
        os.utime(workspace / "reports" / name, (time.time() - 86400, time.time() - 86400))
    (workspace / "diabetes_mlops" / "lint_failure.py").write_text("import os\n")  # ruff F401: Code quality fails
    agent = Agent(workspace, agent_environment(tmp_path), commit)
    failed = agent.build(7, may_fail="Build/Code quality#1")
    assert failed.plan["result"] == "FAILURE" and failed.exit_codes["Build/Code quality#1"] != 0
    assert published_junit(workspace, failed) == []
    archived_files = set().union(
        *(archived(workspace, a["artifacts"]) for a in steps_named(failed.plan, "archiveArtifacts"))
    )
    assert not {f for f in archived_files if f.startswith("reports/")}


def test_a_feature_branch_plan_has_only_build() -> None:
    """The plan the executor would run for a feature branch holds Build's commands only."""
    result = plan(branch="feature/docs", params=PARAMS)
    assert [c["stage"][0] for c in result["commands"]] == ["Build"] * 4
