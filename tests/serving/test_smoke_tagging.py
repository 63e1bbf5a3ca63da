"""Smoke-test traffic is logged, tagged synthetic, and left out of the rows a drift report reads."""

from __future__ import annotations

import httpx

from diabetes_mlops.deploy.smoke import smoke_test
from diabetes_mlops.monitoring.drift import read_logged_rows
from diabetes_mlops.monitoring.store import LocalLogStore
from tests.serving.conftest import Server

ROW = [59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]


def test_smoke_requests_are_logged_but_not_read_as_scoring_traffic(server: Server) -> None:
    assert smoke_test(server.url, expect_version=1).ok
    assert httpx.post(f"{server.url}/score", json={"data": [ROW, ROW, ROW]}).status_code == 200
    server.stop()
    store = LocalLogStore(server.settings.logs_dir)
    flags = sorted(record["synthetic"] for record in store.read())
    assert flags.count(True) == 1 and flags.count(False) >= 1
    logged = read_logged_rows(store, None)
    assert len(logged.inputs) == sum(len(r["inputs"]) for r in store.read() if not r["synthetic"])
    assert ROW in logged.inputs.tolist()
