"""Local deployments: a real scoring server per environment on 127.0.0.1, behind a supervisor process.

A deployment is recorded in its home (``<home>/deployments/<env>.json``) and, once it serves, in the
per-user index of running deployments (``deploy/runtime.py``), through which any directory finds it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.deploy import runtime
from diabetes_mlops.deploy.ports import check_free
from diabetes_mlops.deploy.state import DeploymentState, State, pid_alive
from diabetes_mlops.deploy.targets.base import ENVIRONMENTS, check_environment
from diabetes_mlops.errors import DeployError

if TYPE_CHECKING:
    from diabetes_mlops.config import Settings

DEPLOY_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Deployment:
    """A running local deployment and what it serves."""

    env: str
    url: str
    model_name: str
    model_version: int
    pid: int
    healthy: bool = True
    home: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _state(settings: Settings, env: str) -> DeploymentState:
    return DeploymentState(settings.home, check_environment(env))


def _supervisor(current: State) -> int | None:
    """The pid of the supervisor a state names, if it runs."""
    pid = current.get("supervisor_pid")
    return pid if pid_alive(pid) else None


def check_ports(settings: Settings, envs: tuple[str, ...] = ENVIRONMENTS) -> None:
    """Raise PortInUse unless each environment's port is free or already held by this home's deployment there."""
    for env in envs:
        current = _state(settings, env).read()
        port = settings.port_for(env)
        if not (_supervisor(current) and current.get("port") == port):
            check_free(port)


def _start_supervisor(state: DeploymentState, port: int) -> subprocess.Popen[bytes]:
    state.dir.mkdir(parents=True, exist_ok=True)
    # Jenkins kills every process carrying the build's JENKINS_NODE_COOKIE (or BUILD_ID) when the build ends,
    # new session or not: a deployment must outlive the build that made it.
    env = {**os.environ, "JENKINS_NODE_COOKIE": "dontKillMe", "BUILD_ID": "dontKillMe"}
    with open(state.log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "diabetes_mlops.deploy.supervisor",
             "--home", str(state.dir.parent), "--env", state.env, "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=env,
        )  # fmt: skip


def deploy(settings: Settings, env: str, name: str, version: int, port: int | None = None) -> Deployment:
    """Serve ``name:version`` in ``env``; a running deployment is replaced without closing its port.

    A port held by anything else fails at once, before anything starts. Moving to another port starts the new
    deployment first and stops the old one only once the new one serves; if the new one fails, the old one
    keeps serving.
    """
    state = _state(settings, env)
    port = port or settings.port_for(env)
    before = state.read()
    old_pid = _supervisor(before)
    replace_in_place = old_pid is not None and before.get("port") == port
    if not replace_in_place:
        check_free(port)
    asked = before.get("desired")
    generation = (asked["generation"] if asked else 0) + 1
    state.update(desired={"name": name, "version": version, "generation": generation, "port": port}, error=None)
    started = None
    if not replace_in_place:
        if old_pid is None:
            state.update(active=None, supervisor_pid=None)
        started = _start_supervisor(state, port)
    try:
        now = _wait_until_active(state, generation, started)
    except DeployError as exc:
        if started is not None:
            _stop(started.pid)
            started.poll()
            # Back to what ran before: the old deployment's record, or none.
            if old_pid is None:
                state.remove()
            else:
                restored = {k: before.get(k) for k in ("desired", "active", "supervisor_pid", "port", "url")}
                state.update(**restored, error=None)
        raise DeployError(f"{env}: {name}:{version} did not start: {exc}") from None
    if started is not None and old_pid is not None:
        _stop(old_pid)
        runtime.forget(before["port"], old_pid)
    runtime.record(runtime.Entry(port, str(state.dir.parent), env, now["supervisor_pid"]))
    return Deployment(env, now["url"], name, version, now["active"]["pid"], home=str(state.dir.parent))


def _wait_until_active(state: DeploymentState, generation: int, started: subprocess.Popen[bytes] | None) -> State:
    """The state once ``generation`` serves; DeployError with the reason as soon as it cannot."""
    deadline = time.monotonic() + DEPLOY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        now = state.read()
        active, failure = now.get("active"), now.get("error")
        if active and active["generation"] == generation:
            return now
        if failure and failure["generation"] == generation:
            raise DeployError(failure["message"])
        supervisor_gone = started is not None and started.poll() is not None
        if supervisor_gone or (now.get("supervisor_pid") and not pid_alive(now.get("supervisor_pid"))):
            last = state.read().get("error")
            raise DeployError(last["message"] if last else f"the deployment process exited; see {state.log_path}")
        time.sleep(0.1)
    raise DeployError(f"not ready after {DEPLOY_TIMEOUT_SECONDS:.0f} s; see {state.log_path}")


def _stop(pid: int) -> None:
    """SIGTERM a supervisor (it stops its server) and wait until it is gone."""
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _undeploy_home(home: Path, env: str) -> bool:
    state = DeploymentState(home, env)
    current = state.read()
    pid = _supervisor(current)
    if pid is not None:
        _stop(pid)
        runtime.forget(current["port"], pid)
    state.remove()
    return pid is not None


def undeploy(settings: Settings, env: str) -> bool:
    """Stop the deployment of ``env`` in this home; False when nothing ran there."""
    _state(settings, env)
    return _undeploy_home(settings.home, env)


def undeploy_all() -> list[runtime.Entry]:
    """Stop every local deployment of this user, whatever its home; the ones that were stopped."""
    stopped = runtime.running()
    for entry in stopped:
        _undeploy_home(Path(entry.home), entry.env)
    return stopped


def _deployment(home: Path, env: str) -> Deployment | None:
    from diabetes_mlops.deploy.smoke import healthy

    current = DeploymentState(home, env).read()
    active = current.get("active")
    if not (active and _supervisor(current)):
        return None
    url = current["url"]
    return Deployment(env, url, active["name"], active["version"], active["pid"], healthy(url), str(home.resolve()))


def endpoints(settings: Settings) -> list[Deployment]:
    """The local deployments of this home that run now, with a live health check of each."""
    return [d for env in ENVIRONMENTS if (d := _deployment(settings.home, env)) is not None]


def elsewhere(settings: Settings) -> list[Deployment]:
    """The local deployments of other homes that run now, from the per-user index of running deployments."""
    here = settings.home.resolve()
    found = (_deployment(Path(e.home), e.env) for e in runtime.running() if Path(e.home) != here)
    return [d for d in found if d is not None]


def log_text(settings: Settings, env: str) -> str:
    """The output of ``env``'s supervisor and its servers, "" when it has none."""
    path = _state(settings, env).log_path
    return path.read_text(errors="replace") if path.is_file() else ""


def running_version(settings: Settings, env: str) -> int | None:
    """The model version ``env`` of this home serves now, or None."""
    deployment = _deployment(settings.home, env)
    return deployment.model_version if deployment is not None and deployment.healthy else None
