"""Local deployments: a real scoring server per environment on 127.0.0.1, behind a supervisor process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from diabetes_mlops.deploy.state import DeploymentState, pid_alive
from diabetes_mlops.deploy.targets.base import ENVIRONMENTS, check_environment
from diabetes_mlops.errors import DeployError

if TYPE_CHECKING:
    from diabetes_mlops.config import Settings

DEPLOY_TIMEOUT_SECONDS = 180.0


@dataclass(frozen=True)
class Deployment:
    """A running local deployment and what it serves."""

    env: str
    url: str
    model_name: str
    model_version: int
    pid: int
    healthy: bool = True

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _state(settings: Settings, env: str) -> DeploymentState:
    return DeploymentState(settings.home, check_environment(env))


def _start_supervisor(settings: Settings, state: DeploymentState, port: int) -> None:
    state.dir.mkdir(parents=True, exist_ok=True)
    # Jenkins kills every process carrying the build's JENKINS_NODE_COOKIE (or BUILD_ID) when the build ends,
    # new session or not: a deployment must outlive the build that made it.
    env = {**os.environ, "JENKINS_NODE_COOKIE": "dontKillMe", "BUILD_ID": "dontKillMe"}
    with open(state.log_path, "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "diabetes_mlops.deploy.supervisor",
             "--home", str(state.dir.parent), "--env", state.env, "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=env,
        )  # fmt: skip


def deploy(settings: Settings, env: str, name: str, version: int, port: int | None = None) -> Deployment:
    """Serve ``name:version`` in ``env``; a running deployment is replaced without closing its port."""
    state = _state(settings, env)
    port = port or settings.port_for(env)
    current = state.read()
    if pid_alive(current.get("supervisor_pid")) and current.get("port") != port:
        undeploy(settings, env)
        current = {}
    generation = int((current.get("desired") or {}).get("generation", 0)) + 1
    state.update(desired={"name": name, "version": version, "generation": generation}, error=None)
    if not pid_alive(current.get("supervisor_pid")):
        state.update(active=None, supervisor_pid=None)
        _start_supervisor(settings, state, port)
    deadline = time.monotonic() + DEPLOY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        now = state.read()
        if (now.get("active") or {}).get("generation") == generation:
            return Deployment(env, now["url"], name, version, now["active"]["pid"])
        if (now.get("error") or {}).get("generation") == generation:
            raise DeployError(f"{env}: {name}:{version} did not start: {now['error']['message']}")
        if now.get("supervisor_pid") and not pid_alive(now["supervisor_pid"]):
            raise DeployError(f"{env}: the deployment process exited; see {state.log_path}")
        time.sleep(0.1)
    raise DeployError(f"{env}: {name}:{version} not ready after {DEPLOY_TIMEOUT_SECONDS:.0f} s; see {state.log_path}")


def undeploy(settings: Settings, env: str) -> bool:
    """Stop the deployment of ``env``; False when nothing ran there."""
    state = _state(settings, env)
    pid = state.read().get("supervisor_pid")
    running = pid_alive(pid)
    if running:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    state.remove()
    return running


def endpoints(settings: Settings) -> list[Deployment]:
    """The local deployments that run now, with a live health check of each."""
    from diabetes_mlops.deploy.smoke import healthy

    found = []
    for env in ENVIRONMENTS:
        current = _state(settings, env).read()
        active = current.get("active")
        if active and pid_alive(current.get("supervisor_pid")):
            found.append(
                Deployment(
                    env, current["url"], active["name"], active["version"], active["pid"], healthy(current["url"])
                )
            )
    return found


def running_version(settings: Settings, env: str) -> int | None:
    """The model version ``env`` serves now, or None."""
    return next((d.model_version for d in endpoints(settings) if d.env == env and d.healthy), None)
