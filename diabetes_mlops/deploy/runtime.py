"""The per-user index of running local deployments, so that any directory can find and stop them.

Each home keeps its own deployments (``<home>/deployments/``); this index says which homes have one
running, on which port. It lives in ``$DIABETES_MLOPS_RUNTIME_DIR``, by default
``$XDG_RUNTIME_DIR/diabetes-mlops`` or, without that variable, ``~/.cache/diabetes-mlops/run``::

    <port>.json     {"port": 8000, "home": "/abs/.mlops", "env": "production", "supervisor_pid": 4242}

One file per port, written whole. An entry whose supervisor no longer runs is stale: readers skip it and
the next deployment on that port replaces it, so a crash leaves nothing to clean by hand.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from diabetes_mlops.deploy.state import pid_alive
from diabetes_mlops.files import write_atomic

RUNTIME_DIR_ENV = "DIABETES_MLOPS_RUNTIME_DIR"


@dataclass(frozen=True)
class Entry:
    """A local deployment that runs: its port, its home, its environment and its supervisor."""

    port: int
    home: str
    env: str
    supervisor_pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop_command(self) -> str:
        return f"diabetes-mlops --home {self.home} undeploy {self.env}"


def runtime_dir() -> Path:
    """Where the index lives: the variable, else the per-user runtime directory, else the user's cache."""
    if explicit := os.environ.get(RUNTIME_DIR_ENV):
        return Path(explicit)
    if xdg := os.environ.get("XDG_RUNTIME_DIR"):
        return Path(xdg) / "diabetes-mlops"
    return Path.home() / ".cache" / "diabetes-mlops" / "run"


def _path(port: int) -> Path:
    return runtime_dir() / f"{port}.json"


def record(entry: Entry) -> None:
    """Say that ``entry`` runs now (replacing whatever the index said about its port)."""
    write_atomic(_path(entry.port), json.dumps(asdict(entry)).encode())


def forget(port: int, supervisor_pid: int) -> None:
    """Drop the entry of ``port`` if it is still the one of ``supervisor_pid`` (a newer owner keeps its entry)."""
    found = _read(_path(port))
    if found is not None and found.supervisor_pid == supervisor_pid:
        _path(port).unlink(missing_ok=True)


def _read(path: Path) -> Entry | None:
    try:
        return Entry(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def running() -> list[Entry]:
    """The deployments whose supervisor runs now, by port."""
    folder = runtime_dir()
    entries = (_read(path) for path in folder.glob("*.json")) if folder.is_dir() else ()
    return sorted((e for e in entries if e is not None and pid_alive(e.supervisor_pid)), key=lambda e: e.port)


def holder(port: int) -> Entry | None:
    """The running deployment that holds ``port``, if one of this user's does."""
    found = _read(_path(port))
    return found if found is not None and pid_alive(found.supervisor_pid) else None
