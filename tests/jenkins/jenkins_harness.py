"""Run the Groovy harness (harness.groovy) from Python, and walk the plans it prints."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HARNESS = HERE / "harness.groovy"
LIBRARY = ROOT / "jenkins"
JENKINSFILE = ROOT / "Jenkinsfile"

BUILD_STAGES = ["Setup", "Code quality", "Unit tests", "Data tests"]
RETRAIN_STAGES = ["Train", "Evaluate", "Register"]
RELEASE_STAGES = ["Release QA", "Approve production", "Release production"]
STAGE_TREE = [("Build", BUILD_STAGES), ("Retrain", RETRAIN_STAGES), ("Release", RELEASE_STAGES)]


class HarnessError(AssertionError):
    """The harness refused the Jenkinsfile: exit code and stderr."""

    def __init__(self, returncode: int, stderr: str) -> None:
        super().__init__(f"harness exited {returncode}: {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


def java_home() -> str:
    """JAVA_HOME if it is set, else the JDK 17 under /usr/lib/jvm (Debian's groovy needs one)."""
    if os.environ.get("JAVA_HOME") and Path(os.environ["JAVA_HOME"], "bin", "java").exists():
        return os.environ["JAVA_HOME"]
    candidates = sorted(glob.glob("/usr/lib/jvm/java-17-openjdk*")) + sorted(glob.glob("/usr/lib/jvm/*17*"))
    for candidate in candidates:
        if Path(candidate, "bin", "java").exists():
            return candidate
    raise AssertionError("no JDK 17 under /usr/lib/jvm: apt-get install openjdk-17-jdk-headless")


def groovy() -> str:
    """The groovy executable; scripts/test.sh installs Debian's package when it is missing."""
    path = shutil.which("groovy")
    assert path, "groovy is not installed: apt-get install groovy (scripts/test.sh does)"
    return path


def run_harness(
    jenkinsfile: Path = JENKINSFILE,
    *,
    branch: str = "main",
    params: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    statuses: Mapping[str, int] | None = None,
    workspace: Path | None = None,
    build_number: int = 1,
    job_name: str | None = None,
    git_commit: str | None = None,
    cause: str = "scm",
    library: Path | None = LIBRARY,
) -> subprocess.CompletedProcess[str]:
    """Run harness.groovy on ``jenkinsfile`` for one branch and parameter set; the raw process result.

    ``cause`` is what started the build: scm (a push), timer (the nightly cron), user or upstream.
    """
    command = [groovy(), str(HARNESS), "--jenkinsfile", str(jenkinsfile), "--branch", branch]
    command += ["--build-number", str(build_number), "--cause", cause]
    if library is not None:
        command += ["--library", str(library)]
    if workspace is not None:
        command += ["--workspace", str(workspace)]
    if job_name is not None:
        command += ["--job-name", job_name]
    if git_commit is not None:
        command += ["--git-commit", git_commit]
    for flag, values in (("--param", params), ("--env", env), ("--status", statuses)):
        for key, value in (values or {}).items():
            command += [flag, f"{key}={value}"]
    # a short-lived JVM: the C1 compiler and the serial collector start it about a second sooner
    environment = {**os.environ, "JAVA_HOME": java_home(), "JAVA_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120, check=False)


_PLANS: dict[str, str] = {}


def plan(jenkinsfile: Path = JENKINSFILE, **kwargs: Any) -> dict[str, Any]:
    """The plan the harness prints for ``jenkinsfile``; HarnessError when it refuses it.

    Plans are deterministic, so one is computed once per session for the same file content and arguments.
    """
    key = json.dumps([str(jenkinsfile), Path(jenkinsfile).read_text(), kwargs], sort_keys=True, default=str)
    if key not in _PLANS:
        result = run_harness(jenkinsfile, **kwargs)
        if result.returncode != 0:
            raise HarnessError(result.returncode, result.stderr)
        _PLANS[key] = result.stdout
    return json.loads(_PLANS[key])


def stages(tree: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every stage of a plan's stage tree, parents before children."""
    for stage in tree:
        yield stage
        yield from stages(stage.get("stages") or [])


def stage(plan_: dict[str, Any], path: str) -> dict[str, Any]:
    """The stage at ``path`` ('Release/Release QA')."""
    for found in stages(plan_["stages"]):
        if found["path"] == path:
            return found
    raise KeyError(path)


def stage_tree(plan_: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The top-level stages with the names of their children, in order."""
    return [(top["name"], [child["name"] for child in top.get("stages") or []]) for top in plan_["stages"]]


def running(plan_: dict[str, Any]) -> list[str]:
    """Paths of the stages that run, in order."""
    return [found["path"] for found in stages(plan_["stages"]) if found["runs"]]


def steps_named(plan_: dict[str, Any], step: str) -> list[dict[str, Any]]:
    """Every recorded step of that kind, in stages and in their post blocks and the pipeline's, in order."""
    blocks = [block for found in stages(plan_["stages"]) for block in [found, *found.get("post", [])]]
    blocks += plan_["post"]
    return [entry for block in blocks for entry in block["steps"] if entry["step"] == step]
