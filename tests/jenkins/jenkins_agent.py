"""A Jenkins agent stand-in for executed builds: copies of the repository as workspaces, every sh step of the
harness's plan run in order as Jenkins' durable tasks run them, credentials bound as the Credentials Binding
plugin binds them, and at a build's end every process carrying its JENKINS_NODE_COOKIE killed, as Jenkins' process
tree killer does."""

from __future__ import annotations

import glob
import os
import re
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

from jenkins_harness import ROOT, plan

PARAMS = {"TARGET": "local", "SKIP_APPROVAL": "true"}
JOB = "diabetes-mlops/main"
SECRET = re.compile(r"@@secret\(([^/)]+)/([^)]+)\)@@")
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
    logs: dict[str, str] = field(default_factory=dict)


class Agent:
    """A Jenkins agent stand-in: one workspace, an environment, and sh steps run like Jenkins' durable tasks.

    ``params`` are the build parameters, ``node_env`` the node properties the Jenkinsfile reads (``env.X`` outside
    any step), ``credentials`` the Jenkins credentials store: id -> variable -> value, bound where the plan's
    ``withCredentials`` put a placeholder.
    """

    def __init__(
        self,
        workspace: Path,
        env: dict[str, str],
        git_commit: str,
        params: dict[str, str] | None = None,
        node_env: dict[str, str] | None = None,
        credentials: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.workspace = workspace
        self.env = env
        self.git_commit = git_commit
        self.params = params or PARAMS
        self.node_env = node_env or {}
        self.credentials = credentials or {}
        self.tmp = workspace.parent / f"{workspace.name}@tmp"
        self.tmp.mkdir(exist_ok=True)
        self.home = Path(env["HOME"], ".diabetes-mlops", JOB)

    def plan(self, build_number: int, statuses: dict[str, int], cause: str = "scm") -> dict[str, Any]:
        """The harness's plan for this workspace's Jenkinsfile and library, for a build ``cause`` started."""
        return plan(
            self.workspace / "Jenkinsfile",
            library=self.workspace / "jenkins",
            branch="main",
            params=self.params,
            env=self.node_env,
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
            env={**self.env, **self.bind(command["env"]), "JENKINS_NODE_COOKIE": cookie},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def bind(self, env: dict[str, str]) -> dict[str, str]:
        """The step's environment with each ``withCredentials`` placeholder replaced by the stored secret."""

        def secret(match: re.Match[str]) -> str:
            credentials_id, variable = match.group(1), match.group(2)
            assert credentials_id in self.credentials, f"no credentials {credentials_id!r} on this Jenkins"
            return self.credentials[credentials_id][variable]

        return {name: SECRET.sub(secret, value) for name, value in env.items()}

    def build(self, build_number: int, cause: str = "scm", may_fail: str | None = None) -> Build:
        """Run every sh step in order; a returnStatus step's actual exit code re-plans the rest of the build, as
        does a failure of the step ``may_fail``. At the end the build's processes are killed as Jenkins does."""
        statuses: dict[str, int] = {}
        started = time.time()
        cookie = uuid.uuid4().hex
        current = self.plan(build_number, statuses, cause)
        done = 0
        build = Build(current, {}, started)
        try:
            while done < len(build.plan["commands"]):
                build.plan = self._step(build, done, statuses, cookie, may_fail)
                done += 1
        finally:
            kill_build_processes(cookie)
        return build

    def _step(
        self, build: Build, done: int, statuses: dict[str, int], cookie: str, may_fail: str | None
    ) -> dict[str, Any]:
        """Run command ``done`` of the plan; the plan for the rest of the build."""
        current = build.plan
        command = current["commands"][done]
        build_number, cause = int(command["env"]["BUILD_NUMBER"]), current["cause"]
        result = self.sh(command, cookie)
        build.exit_codes[command["id"]] = result.returncode
        build.logs[command["id"]] = result.stdout + result.stderr
        output = f"{command['id']} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        if not command["returnStatus"]:
            assert result.returncode == 0 or command["id"] == may_fail, output
        elif result.returncode != command["status"]:
            # 3: champion kept or retrain not due; 4: drift found (recorded, not a failure)
            assert result.returncode in (0, 3, 4) or command["id"].startswith("post:"), output
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
