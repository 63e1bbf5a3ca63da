"""The process behind a local deployment: it owns the listening socket and swaps the server behind it.

One supervisor runs per environment. It binds the port once and hands the same socket to each server
process it starts, so replacing a version never closes the port: the new server starts on the shared
socket, the supervisor waits until it is ready, and only then stops the old one, whose queued
connections the new one accepts. The deployer talks to it through the environment's state file.

It binds before it records itself: when the port is taken it writes the reason as the desired
generation's error and exits 1, so the deployer fails at once. It starts only versions desired on its own
port; while a deployment moves to another port, the old supervisor keeps serving until it is stopped.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from diabetes_mlops.deploy.ports import PortInUse, listen
from diabetes_mlops.deploy.state import DeploymentState, Desired

POLL_SECONDS = 0.1
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0


class Supervisor:
    """Keeps the server process of one environment at the version the state file asks for."""

    def __init__(self, home: Path, env: str, port: int) -> None:
        self.home = home
        self.state = DeploymentState(home, env)
        self.port = port
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.listener = listen("127.0.0.1", port)
        self.listener.set_inheritable(True)

    def _start(self, desired: Desired) -> subprocess.Popen[bytes] | None:
        """Start a server for ``desired`` on the shared socket; None when it did not become ready."""
        generation = desired["generation"]
        ready = self.state.path.with_suffix(f".ready-{generation}")
        ready.unlink(missing_ok=True)
        args = [
            sys.executable, "-m", "diabetes_mlops.deploy.server_process", "--home", str(self.home),
            "--model", f"{desired['name']}:{desired['version']}",
            "--fd", str(self.listener.fileno()), "--ready-file", str(ready),
        ]  # fmt: skip
        with open(self.state.log_path, "ab") as log:
            child = subprocess.Popen(args, pass_fds=(self.listener.fileno(),), stdout=log, stderr=log)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not ready.exists():
            if child.poll() is not None or time.monotonic() > deadline or self.stopping:
                _stop(child)
                reason = "exited" if child.returncode is not None else "was not ready in time"
                self.state.update(
                    error={"generation": generation, "message": f"server {reason}; see {self.state.log_path}"}
                )
                return None
            time.sleep(POLL_SECONDS)
        ready.unlink(missing_ok=True)
        return child

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        self.state.update(supervisor_pid=os.getpid(), port=self.port, url=f"http://127.0.0.1:{self.port}")
        while not self.stopping:
            current = self.state.read()
            desired, active, failure = current.get("desired"), current.get("active"), current.get("error")
            failed = failure["generation"] if failure else None
            child_died = self.child is not None and self.child.poll() is not None
            if (
                desired
                and desired.get("port", self.port) == self.port
                and desired["generation"] != failed
                and (active is None or desired["generation"] != active["generation"] or child_died)
            ):
                new = self._start(desired)
                if new is not None:
                    old, self.child = self.child, new
                    # The old server stops before the switch is reported, so once a deploy returns only the
                    # new version answers.
                    if old is not None:
                        _stop(old)
                    self.state.update(active={**desired, "pid": new.pid}, error=None)
            time.sleep(POLL_SECONDS)
        if self.child is not None:
            _stop(self.child)
        self.listener.close()

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stopping = True


def _stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM, so the server finishes its requests and flushes its log; SIGKILL if it hangs."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--env", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        supervisor = Supervisor(args.home, args.env, args.port)
    except PortInUse as exc:
        state = DeploymentState(args.home, args.env)
        desired = state.read().get("desired")
        generation = desired["generation"] if desired else None
        state.update(error={"generation": generation, "message": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    supervisor.run()


if __name__ == "__main__":
    main()
