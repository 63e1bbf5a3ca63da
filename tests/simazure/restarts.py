"""ACI's restart policy for one container, and what the container's instance view and logs then show.

As Azure runs a container group: once the image is pulled and the container started, the group is provisioned
(``Succeeded``) whatever the app does next. When the process exits, ``Always`` starts it again (any exit code),
``OnFailure`` only after a non-zero exit, ``Never`` leaves it ``Terminated``; each restart waits a back-off that
doubles, counts in ``restartCount``, moves the last run to ``previousState`` and adds events (``Started``,
``BackOff``). The logs are the current run's (``az container logs`` shows no earlier run). Azure's back-off
grows to minutes; here it stops at a few seconds so a test sees restarts in time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.simazure.containers import Container

BACKOFF_SECONDS = (1.0, 2.0, 4.0)
POLICIES = ("Always", "OnFailure", "Never")


def timestamp() -> str:
    """Now, as Azure writes times in its answers."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Supervised:
    """One container run under a restart policy: ``begin`` starts it, ``stop`` ends it for good."""

    def __init__(self, start: Callable[[], Container], policy: str, on_start: Callable[[Container], None]) -> None:
        self._start = start
        self.policy = policy
        self._on_start = on_start
        self.container: Container | None = None
        self.last: Container | None = None  # the run before the current one (``kubectl logs --previous``)
        self.restart_count = 0
        self.current: dict[str, Any] = {"state": "Waiting", "detailStatus": "ContainerCreating"}
        self.previous: dict[str, Any] | None = None
        self.events: dict[str, dict[str, Any]] = {}
        self._first_id = ""
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    def begin(self, started: Container | None = None) -> Container:
        """Start the container (raising as the runtime does when it cannot), or take one ``started`` already,
        and watch it from then on."""
        container = self._run(started)
        threading.Thread(target=self._watch, daemon=True).start()
        return container

    def _run(self, started: Container | None = None) -> Container:
        container = started or self._start()
        if not self._first_id:
            self._first_id = container.root.name.removeprefix("c-")
        with self._lock:
            self.container = container
            self.current = {"state": "Running", "startTime": timestamp(), "detailStatus": ""}
        self._event("Started", "Started container", "Normal")
        self._on_start(container)
        return container

    def _event(self, name: str, message: str, kind: str) -> None:
        """Events are counted by name and message, as Kubernetes (under ACI) aggregates them."""
        now = timestamp()
        with self._lock:
            found = self.events.setdefault(
                f"{name}\0{message}",
                {"count": 0, "firstTimestamp": now, "name": name, "message": message, "type": kind},
            )
            found.update(count=found["count"] + 1, lastTimestamp=now)

    def _watch(self) -> None:
        while not self._stopped.is_set():
            container = self.container
            assert container is not None
            code = container.process.wait()
            if self._stopped.is_set():
                return
            with self._lock:
                ended = {**self.current, "state": "Terminated", "exitCode": code, "finishTime": timestamp()}
                ended["detailStatus"] = "Completed" if code == 0 else "Error"
                self.previous = ended
            if self.policy == "Never" or (self.policy == "OnFailure" and code == 0):
                with self._lock:
                    self.current = ended
                return
            delay = BACKOFF_SECONDS[min(self.restart_count, len(BACKOFF_SECONDS) - 1)]
            with self._lock:
                self.current = {"state": "Waiting", "detailStatus": "CrashLoopBackOff: Back-off restarting"}
            self._event("BackOff", "Back-off restarting failed container", "Warning")
            if self._stopped.wait(delay):
                return
            self.restart_count += 1
            self.last = container
            try:
                self._run()
            except Exception as exc:  # the image went away: the container waits, as Azure's would
                self._event("Failed", f"Failed to start container: {exc}", "Warning")
                return

    @property
    def image(self) -> str:
        assert self.container is not None
        return self.container.image

    @property
    def port(self) -> int:
        """Where the current run listens (a restart listens on a new loopback port)."""
        assert self.container is not None
        return self.container.port

    @property
    def pod_id(self) -> str:
        """A name part that stays the same across restarts: the first run's."""
        return self._first_id

    def ready(self) -> bool:
        return self.container is not None and self.container.ready()

    @property
    def stopped(self) -> bool:
        """Ended for good (``stop``): it will not be restarted."""
        return self._stopped.is_set()

    @property
    def state(self) -> str:
        """The group's state: Running while it runs or will be restarted; else how its container ended."""
        with self._lock:
            if self.current["state"] != "Terminated":
                return "Running"
            return "Succeeded" if self.current.get("exitCode") == 0 else "Failed"

    def view(self) -> dict[str, Any]:
        """The container's ``instanceView``, as ``ContainerPropertiesInstanceView`` has it."""
        with self._lock:
            out: dict[str, Any] = {
                "restartCount": self.restart_count,
                "currentState": dict(self.current),
                "events": [dict(e) for e in self.events.values()],
            }
            if self.previous is not None:
                out["previousState"] = dict(self.previous)
            return out

    def logs(self, tail: int | None = None, previous: bool = False) -> str:
        """The current run's output (or the one before, with ``previous``), its last ``tail`` lines when asked."""
        container = self.last if previous else self.container
        if container is None:
            return ""
        path = container.root / "container.log"
        text = path.read_text(errors="replace") if path.is_file() else ""
        if tail is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-tail:]) if tail > 0 else ""
        return text

    def stop(self) -> None:
        self._stopped.set()
        container = self.container
        if container is not None:
            container.stop()
