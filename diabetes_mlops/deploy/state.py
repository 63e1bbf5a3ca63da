"""The state file of a local deployment, shared by the deployer and the supervisor under a file lock.

The deployer writes ``desired``; the supervisor starts that version, then writes ``active`` or ``error``
with the same generation, which is how the deployer learns the outcome of its own request.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypedDict, cast

from filelock import FileLock

from diabetes_mlops.files import write_atomic


class Desired(TypedDict):
    """The version an environment should serve; each deploy asks with the next generation."""

    name: str
    version: int
    generation: int
    port: int


class Active(Desired):
    """The version that serves now, and its server's pid."""

    pid: int


class Failure(TypedDict):
    """Why a generation did not start (None when the supervisor itself could not start)."""

    generation: int | None
    message: str


class State(TypedDict, total=False):
    """The whole file: what is asked, what serves, the supervisor, where it listens, the last failure."""

    env: str
    desired: Desired
    active: Active
    supervisor_pid: int
    port: int
    url: str
    error: Failure


class DeploymentState:
    """``<home>/deployments/<env>.json``: desired and active version, port, pids, last error."""

    def __init__(self, home: Path, env: str) -> None:
        self.dir = Path(home).resolve() / "deployments"
        self.env = env
        self.path = self.dir / f"{env}.json"
        self.log_path = self.dir / f"{env}.log"
        self._lock = FileLock(self.dir / f"{env}.lock", timeout=30)

    def read(self) -> State:
        try:
            return cast(State, json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    def update(self, **changes: Any) -> State:
        """Apply ``changes`` (None removes a key) atomically and return the new state."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            merged = {**self.read(), "env": self.env, **changes}
            state = {k: v for k, v in merged.items() if v is not None}
            write_atomic(self.path, json.dumps(state, indent=2).encode())
            return cast(State, state)

    def remove(self) -> None:
        with self._lock:
            self.path.unlink(missing_ok=True)


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` runs; an exited child not yet reaped (a zombie) counts as dead."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
