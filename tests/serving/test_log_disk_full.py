"""The scoring log on a real full filesystem (a small tmpfs mounted for the test, as root as CI runs)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from diabetes_mlops.monitoring.store import LocalLogStore
from tests.serving.conftest import Server

ROW = {"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A home whose ``logs`` directory is a 256 KiB tmpfs."""
    logs = tmp_path / "home" / "logs"
    logs.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(logs)], check=True)
    try:
        yield tmp_path / "home"
    finally:
        subprocess.run(["umount", "-l", str(logs)], check=True)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem is full; deleting it gives the space back."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def sample(url: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", httpx.get(f"{url}/metrics").text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_a_full_disk_is_counted_said_once_and_caught_up(start_server: Callable[..., Server], small_disk: Path) -> None:
    env = {"DIABETES_MLOPS_SCORING_LOG_REQUIRED": "true", "DIABETES_MLOPS_SCORING_LOG_BUFFER": "50"}
    server = start_server(env, home=small_disk)
    filler = fill(small_disk / "logs")
    with httpx.Client(base_url=server.url) as http:
        statuses = [
            http.post("/score", json=ROW, headers={"X-Ms-Request-Id": f"full-{i}"}).status_code for i in range(80)
        ]
        assert set(statuses) == {200}  # the service goes on answering
        wait_until(lambda: sample(server.url, "scoring_log_dropped_records_total") == 30)
        assert sample(server.url, "scoring_log_unwritten_records") == 50
        not_ready = http.get("/ready")
        assert not_ready.status_code == 503 and "scoring_log_required" in not_ready.json()["error"]
        assert http.get("/v2/health/ready").status_code == 503
        time.sleep(2.5)  # several failed retries: still said only once
        filler.unlink()
        wait_until(lambda: http.get("/ready").status_code == 200)
        assert sample(server.url, "scoring_log_unwritten_records") == 0
        assert http.post("/score", json=ROW, headers={"X-Ms-Request-Id": "after"}).status_code == 200
    server.stop()
    stderr = server.stderr()
    assert stderr.count("cannot be written") == 1 and "Traceback" not in stderr, stderr
    assert "written again (30 records dropped" in stderr
    logged = [r["request_id"] for r in LocalLogStore(small_disk / "logs").read()]
    # The newest 50 of the 80 waited in memory and were written, in order, once space came back.
    assert logged == [f"full-{i}" for i in range(30, 80)] + ["after"]
