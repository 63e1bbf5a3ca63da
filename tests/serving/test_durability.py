"""Nothing is lost: SIGTERM flushes every scoring record, and a replaced deployment never refuses a request."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from diabetes_mlops.config import load_settings
from diabetes_mlops.deploy.local import deploy, endpoints, undeploy
from diabetes_mlops.deploy.smoke import smoke_test
from diabetes_mlops.monitoring.store import LocalLogStore
from tests.conftest import free_port
from tests.serving.conftest import Server, register_model


def test_sigterm_after_a_load_test_loses_no_record(start_server: Callable[..., Server]) -> None:
    server = start_server()
    answered_rows = 0
    lock = threading.Lock()

    def client(worker: int) -> None:
        nonlocal answered_rows
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for i in range(150):
                rows = [[float(worker), float(i), 3, 4, 5, 6, 7, 8, 9, 10]] * (1 + i % 4)
                response = http.post("/score", json={"data": rows})
                assert response.status_code == 200
                with lock:
                    answered_rows += len(response.json()["result"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client, range(8)))
    server.stop()
    # uvicorn re-raises SIGTERM once its graceful shutdown is over, so the exit status is -SIGTERM.
    assert server.process.returncode in (0, -signal.SIGTERM)
    records = list(LocalLogStore(server.settings.logs_dir).read())
    assert sum(len(r["predictions"]) for r in records) == answered_rows == 8 * sum(1 + i % 4 for i in range(150))
    assert len({r["request_id"] for r in records}) == 8 * 150


def test_workers_share_the_port_and_drain_keep_alive_clients_on_sigterm(start_server: Callable[..., Server]) -> None:
    server = start_server(args=("--workers", "2"))
    lost: list[str] = []
    answered: list[str] = []
    closing = threading.Event()

    def client() -> None:
        # One pooled keep-alive connection per client: every request sent on it while the service stops is
        # answered, the last with Connection: close, after which the client goes elsewhere.
        with httpx.Client(base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=1)) as http:
            while True:
                try:
                    response = http.post("/score", json={"data": [[1] * 10]})
                except httpx.TransportError as exc:
                    lost.append(repr(exc))
                    return
                assert response.status_code == 200, response.text
                answered.append(response.headers["x-ms-request-id"])
                if response.headers.get("connection") == "close":
                    closing.set()
                    return

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    server.stop()
    for thread in threads:
        thread.join(60)
    assert lost == [] and closing.is_set()
    assert server.process.returncode == 0, server.stderr()
    # Request ids start with a prefix of each process: both workers answered.
    assert len({request_id[:24] for request_id in answered}) == 2
    records = list(LocalLogStore(server.settings.logs_dir).read())
    assert sorted(str(r["request_id"]) for r in records) == sorted(answered)


@pytest.fixture
def local_home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_replacing_a_deployment_never_refuses_a_request(local_home: Path) -> None:
    settings = load_settings(home=local_home, qa_port=free_port())
    first, second = register_model(settings, 1.0), register_model(settings, 50.0)
    try:
        deploy(settings, "qa", settings.model_name, first)
        url = f"http://127.0.0.1:{settings.qa_port}"
        statuses: list[int] = []
        versions: list[str] = []
        stop = threading.Event()

        def client() -> None:
            # A fresh connection per request: the port itself must answer throughout the switch.
            while not stop.is_set():
                try:
                    response = httpx.post(f"{url}/score", json={"data": [[1] * 10]}, headers={"Connection": "close"})
                    statuses.append(response.status_code)
                    versions.append(response.headers["x-model-version"])
                except httpx.TransportError as exc:
                    statuses.append(-1)
                    versions.append(repr(exc))

        def answered(count: int) -> None:
            # Counted, not timed: on a loaded machine half a second may be a handful of requests.
            deadline = time.monotonic() + 60
            while len(statuses) < count and time.monotonic() < deadline:
                time.sleep(0.01)

        thread = threading.Thread(target=client)
        thread.start()
        answered(25)
        replaced = deploy(settings, "qa", settings.model_name, second)
        answered(len(statuses) + 25)
        stop.set()
        thread.join(30)
        assert replaced.model_version == second
        assert set(statuses) == {200}, [v for s, v in zip(statuses, versions, strict=True) if s != 200][:3]
        assert versions[0] == str(first) and versions[-1] == str(second)
        assert len(statuses) >= 50
        assert [(e.env, e.model_version, e.healthy) for e in endpoints(settings)] == [("qa", second, True)]
    finally:
        assert undeploy(settings, "qa")
    assert endpoints(settings) == []
    assert not smoke_test(url, timeout=0.5).ok


@pytest.mark.slow
def test_keep_alive_clients_lose_no_request_across_replaces(local_home: Path) -> None:
    settings = load_settings(home=local_home, qa_port=free_port())
    versions = [register_model(settings, 1.0), register_model(settings, 50.0)]
    deploy(settings, "qa", settings.model_name, versions[0])
    url = f"http://127.0.0.1:{settings.qa_port}"
    failures: list[str] = []
    answered: list[str] = []
    stop = threading.Event()

    def client() -> None:
        # One pooled keep-alive connection per client, reused for every request, as load balancers do.
        with httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_connections=1)) as http:
            while not stop.is_set():
                try:
                    response = http.post("/score", json={"data": [[1] * 10]})
                    if response.status_code != 200:
                        failures.append(f"status {response.status_code}")
                    answered.append(response.headers["x-model-version"])
                except httpx.TransportError as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(16)]
    try:
        for thread in threads:
            thread.start()
        for i in range(1, 4):
            time.sleep(0.3)
            deploy(settings, "qa", settings.model_name, versions[i % 2])
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        undeploy(settings, "qa")
    assert failures == []
    assert set(answered) == {str(v) for v in versions} and len(answered) > 16 * 3
