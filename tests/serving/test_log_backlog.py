"""Requests faster than the scoring log's writer: new work waits for the writer (backpressure), is refused with a
503 only when the writer stays stuck, memory does not grow without bound, and every answered request is logged."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from starlette.testclient import TestClient

from diabetes_mlops.config import load_settings
from diabetes_mlops.data import load_builtin
from diabetes_mlops.monitoring.logger import ScoringLogger
from diabetes_mlops.monitoring.store import LocalLogStore
from diabetes_mlops.serving.app import create_app
from diabetes_mlops.serving.metrics import ServiceMetrics
from diabetes_mlops.serving.model import ServedModel
from diabetes_mlops.serving.scorer import Scorer, ServiceConfig
from tests.serving.conftest import Server, register_model


class SlowDisk(LocalLogStore):
    """A log store whose writes wait until the test lets them through, as a disk that cannot keep up."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writing = threading.Event()
        self.go = threading.Event()

    def write(self, records: list[dict[str, object]]) -> None:
        self.writing.set()
        self.go.wait(30)
        super().write(records)


def served_with_held_disk(tmp_path: Path, max_backlog_rows: int) -> tuple[ServedModel, SlowDisk, ScoringLogger]:
    """A registered model, and a scoring log whose disk waits until the test lets it write."""
    settings = load_settings(home=tmp_path / "home")
    version = register_model(settings)
    served = ServedModel.from_dir(settings.registry_dir / settings.model_name / str(version))
    disk = SlowDisk(tmp_path / "logs")
    return served, disk, ScoringLogger(disk, flush_interval=0.01, max_backlog_rows=max_backlog_rows)


def test_a_writer_that_falls_behind_makes_requests_wait_then_gets_503s_not_unbounded_memory(tmp_path: Path) -> None:
    served, disk, logger = served_with_held_disk(tmp_path, max_backlog_rows=200)
    rows = load_builtin().iloc[:100, :10].to_numpy().tolist()
    scorer = Scorer(served, ServiceConfig(admit_wait=0.3), logger, metrics=ServiceMetrics(logger))
    with TestClient(create_app(scorer)) as http, ThreadPoolExecutor(1) as pool:

        def post() -> tuple[int, dict[str, object]]:
            answer = http.post("/score", json={"data": rows})
            return answer.status_code, answer.json()

        assert post()[0] == 200
        assert disk.writing.wait(10)  # the writer took the first 100 rows and waits on the disk
        answered = [post() for _ in range(3)]  # 100, 200, then 300 rows wait: over the bound
        assert [status for status, _ in answered] == [200, 200, 200]
        began = time.monotonic()
        refused = http.post("/score", json={"data": rows})  # the writer stays stuck for the whole wait
        assert refused.status_code == 503
        assert refused.json() == {"error": "the scoring log is behind: retry in a moment"}
        assert refused.headers["retry-after"] == "1"
        assert time.monotonic() - began >= 0.3
        waiting = pool.submit(post)
        time.sleep(0.1)
        assert not waiting.done()  # neither answered nor refused: it waits for the writer
        disk.go.set()
        assert waiting.result(10)[0] == 200  # the writer caught up within the wait
        assert post()[0] == 200
    logger.close()
    logged = [line for path in (tmp_path / "logs").rglob("*.jsonl") for line in path.read_text().splitlines()]
    assert len(logged) == 6  # every answered request, and not the refused one


def test_over_loopback_pooled_clients_faster_than_the_writer_wait_and_every_answer_is_logged(
    start_server: Callable[..., Server],
) -> None:
    """The served path, as a pooled keep-alive client drives it: with a backlog bound of one row, every batch
    after the first of each writer's turn waits for the writer, and is answered (not refused) once it has
    taken the queue; each answer is in the log after SIGTERM."""
    server = start_server(env={"DIABETES_MLOPS_SCORING_LOG_BACKLOG_ROWS": "1"})
    body = {"data": load_builtin().iloc[:1000, :10].to_numpy().tolist()}
    with httpx.Client(base_url=server.url, timeout=30) as client, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: client.post("/score", json=body), range(80)))
    assert [a.status_code for a in answers] == [200] * 80
    server.stop()
    logged = [json.loads(line) for p in server.settings.logs_dir.glob("*.jsonl") for line in p.read_text().splitlines()]
    assert sorted(r["request_id"] for r in logged) == sorted(a.headers["x-ms-request-id"] for a in answers)


def test_hundreds_of_waiting_requests_are_all_admitted_once_the_writer_catches_up(tmp_path: Path) -> None:
    """One watch of the log serves every waiting request, and each is let through when the backlog clears."""
    served, disk, logger = served_with_held_disk(tmp_path, max_backlog_rows=10)
    scorer = Scorer(served, ServiceConfig(admit_wait=10.0), logger)
    rows = np.ones((11, 10))

    async def waiting_requests() -> list[float]:
        logger.log("first", time.time(), ("diabetes", 1), rows, np.zeros(11), 0.1, None)
        while not disk.writing.is_set():  # the writer took the first rows and waits on the disk
            await asyncio.sleep(0.01)
        logger.log("second", time.time(), ("diabetes", 1), rows, np.zeros(11), 0.1, None)  # over the bound

        async def admitted() -> float:
            await scorer.admit()
            return time.monotonic()

        waiting = [asyncio.ensure_future(admitted()) for _ in range(300)]
        await asyncio.sleep(0.2)
        assert not any(w.done() for w in waiting)
        released = time.monotonic()
        disk.go.set()
        return [await w - released for w in waiting]

    delays = asyncio.run(waiting_requests())
    logger.close()
    assert len(delays) == 300 and max(delays) < 5.0
