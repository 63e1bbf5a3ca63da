"""Several server processes on one port, each the whole single-process server on a socket of its own.

Each worker listens with SO_REUSEPORT, so the kernel spreads new connections evenly; on one shared socket,
the worker that wakes first takes a whole burst of connections (of wrk's 32, one worker took nearly all).
Every worker drains on SIGTERM as a lone server does (the next request on each open keep-alive connection
is answered with ``Connection: close``), which uvicorn's own multi-process mode does not: its workers close
idle connections at once, failing the request a pooled client is sending on one at that moment.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.deploy.ports import listen, reserve
from diabetes_mlops.errors import MlopsError

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess

    from diabetes_mlops.config import Settings

POLL_SECONDS = 0.1


class WorkerFailed(MlopsError):
    """A worker exited before it accepted connections (its error is on stderr)."""


def _worker(settings: Settings, model_dir: Path, address: tuple[str, int], ready_file: Path) -> None:
    from diabetes_mlops.serving.server import serve

    try:
        serve(settings, model_dir, fd=listen(*address, reuse_port=True).detach(), ready_file=ready_file)
    except MlopsError as exc:
        sys.exit(f"error: {exc}")


def serve_workers(
    settings: Settings,
    model_dir: Path,
    host: str,
    port: int,
    workers: int,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run ``workers`` servers on ``host:port`` until SIGTERM or SIGINT, which each of them gets and drains on.

    The port is reserved before any worker starts: a taken port is a PortInUse at once. ``on_ready`` gets
    the service's URL once every worker accepts connections. A worker that dies later is replaced; one
    that exits before it is ready stops them all with WorkerFailed.
    """
    reserved = reserve(host, port)
    address = reserved.getsockname()[:2]
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    processes: list[SpawnProcess] = []
    with tempfile.TemporaryDirectory(prefix="diabetes-mlops-workers-") as ready_dir:

        def ready_file(index: int) -> Path:
            return Path(ready_dir) / f"worker-{index}"

        def start(index: int) -> SpawnProcess:
            ready_file(index).unlink(missing_ok=True)
            process = context.Process(
                target=_worker,
                args=(settings, model_dir, address, ready_file(index)),
                name=f"diabetes-mlops-worker-{index}",
            )
            process.start()
            return process

        try:
            processes = [start(index) for index in range(workers)]
            ready = False
            while not stopping:
                for index, process in enumerate(processes):
                    if process.exitcode is not None:
                        if not ready:
                            raise WorkerFailed(f"a server worker exited ({process.exitcode}) before it was ready")
                        processes[index] = start(index)
                if not ready and all(ready_file(i).exists() for i in range(workers)):
                    ready = True
                    if on_ready is not None:
                        on_ready("http://{}:{}".format(*address))
                time.sleep(POLL_SECONDS)
        finally:
            reserved.close()
            for process in processes:
                if process.exitcode is None and process.pid is not None:
                    os.kill(process.pid, signal.SIGTERM)
            for process in processes:
                process.join()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
