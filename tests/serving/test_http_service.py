"""Keys, request ids, trace context, metrics, Application Insights requests and OpenAPI of the real service."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from diabetes_mlops.data import FEATURES
from diabetes_mlops.monitoring.store import LocalLogStore
from tests.appinsights import Ingestion
from tests.serving.conftest import Server

PAYLOAD = {"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}
KEY = "k3y-for-tests-only"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_key_is_required_when_configured(start_server: Callable[..., Server]) -> None:
    server = start_server({"DIABETES_MLOPS_SCORING_KEY": KEY})
    missing = httpx.post(f"{server.url}/score", json=PAYLOAD)
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["error"]
    wrong = httpx.post(f"{server.url}/score", json=PAYLOAD, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    good = httpx.post(f"{server.url}/score", json=PAYLOAD, headers={"Authorization": f"Bearer {KEY}"})
    assert good.status_code == 200 and len(good.json()["result"]) == 2
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert httpx.get(f"{server.url}/openapi.json").status_code == httpx.get(f"{server.url}/metrics").status_code == 401
    spec = httpx.get(f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert spec["paths"]["/score"]["post"]["security"] == [{"key": []}]
    assert spec["paths"]["/v2/models/{name}/infer"]["post"]["security"] == [{"key": []}]
    server.stop()
    stderr = server.stderr()
    logged = "".join(p.read_text() for p in server.settings.logs_dir.glob("*.jsonl"))
    assert KEY not in stderr and KEY not in logged and logged


def test_request_id_and_traceparent_are_echoed_and_logged(start_server: Callable[..., Server]) -> None:
    server = start_server()
    sent = httpx.post(
        f"{server.url}/score", json=PAYLOAD, headers={"X-Ms-Request-Id": "req-42", "traceparent": TRACEPARENT}
    )
    made = httpx.post(f"{server.url}/score", json=PAYLOAD)
    assert sent.headers["x-ms-request-id"] == "req-42" and sent.headers["traceparent"] == TRACEPARENT
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-ms-request-id"])
    server.stop()
    records = {r["request_id"]: r for r in LocalLogStore(server.settings.logs_dir).read()}
    assert records["req-42"]["traceparent"] == TRACEPARENT
    assert records["req-42"]["predictions"] == sent.json()["result"]
    assert records["req-42"]["inputs"] == [[float(v) for v in row] for row in PAYLOAD["data"]]
    assert records["req-42"]["model_version"] == 1 and records["req-42"]["latency_ms"] > 0
    assert made.headers["x-ms-request-id"] in records


def test_with_a_connection_string_each_request_is_an_application_insights_request(
    start_server: Callable[..., Server], appinsights: Ingestion, tmp_path: Path
) -> None:
    server = start_server({**appinsights.env, "TMPDIR": str(tmp_path)})  # waiting for it polled /ready
    good = httpx.post(f"{server.url}/score", json=PAYLOAD, headers={"traceparent": TRACEPARENT})
    bad = httpx.post(f"{server.url}/score", content=b"{", headers={"Content-Type": "application/json"})
    probes = [httpx.get(f"{server.url}{path}") for path in ("/health", "/metrics", "/v2/health/ready")]
    assert good.status_code == 200 and bad.status_code == 400 and all(p.status_code == 200 for p in probes)
    server.stop()  # a graceful stop exports what is buffered

    requests = appinsights.of_type("RequestData")
    seen = sorted((r["data"]["baseData"]["name"], r["data"]["baseData"]["responseCode"]) for r in requests)
    assert seen == [("POST /score", "200"), ("POST /score", "400")]  # probes are not requests
    by_code = {r["data"]["baseData"]["responseCode"]: r for r in requests}
    assert by_code["200"]["data"]["baseData"]["success"] is True
    assert by_code["400"]["data"]["baseData"]["success"] is False
    assert by_code["200"]["tags"]["ai.operation.id"] == TRACEPARENT.split("-")[1]  # the caller's trace
    (score,) = [d for d in appinsights.of_type("RemoteDependencyData") if d["data"]["baseData"]["name"] == "score"]
    assert score["tags"]["ai.operation.parentId"] == by_code["200"]["data"]["baseData"]["id"]


def test_metrics_count_requests_rows_and_latency(server: Server) -> None:
    def sample(text: str, name: str) -> float:
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    before = httpx.get(f"{server.url}/metrics").text
    for _ in range(3):
        httpx.post(f"{server.url}/score", json=PAYLOAD)
    httpx.post(f"{server.url}/score", content=b"{", headers={"Content-Type": "application/json"})
    after = httpx.get(f"{server.url}/metrics").text
    ok, bad = 'scoring_requests_total{status="200"}', 'scoring_requests_total{status="400"}'
    assert sample(after, ok) - sample(before, ok) == 3
    assert sample(after, bad) - sample(before, bad) == 1
    assert sample(after, "scoring_rows_total") - sample(before, "scoring_rows_total") == 6
    assert sample(after, "scoring_latency_seconds_count") - sample(before, "scoring_latency_seconds_count") == 3


def test_health_ready_and_openapi(server: Server) -> None:
    assert httpx.get(f"{server.url}/health").json() == {"status": "alive"}
    assert httpx.get(f"{server.url}/ready").json() == {"ready": True, "model": {"name": "diabetes", "version": 1}}
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/score" in spec["paths"]
    assert "security" not in spec["paths"]["/score"]["post"]
    json.dumps(spec)


def test_logged_inputs_are_the_rows_as_sent_whatever_the_form(start_server: Callable[..., Server]) -> None:
    server = start_server()
    rows = [[1, 2.5, 3, 4, 5, 6, 7, 8, 9, 1e-3], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]
    batch = rows * 20  # a record the writer thread formats, where the two rows are formatted as they are logged
    pretty = json.dumps({"data": rows}, indent=4)
    assert "\n" in pretty
    reversed_columns = list(reversed(FEATURES))
    forms = {
        "classic": (pretty, rows),
        "records": (json.dumps({"data": [dict(zip(FEATURES, r, strict=True)) for r in rows]}), rows),
        "v2": (json.dumps({"input_data": {"columns": list(FEATURES), "data": rows}}), rows),
        # Columns out of order made a matrix the log's formatter refused, which wedged the log for good.
        "v2-reordered": (
            json.dumps({"input_data": {"columns": reversed_columns, "data": [r[::-1] for r in rows]}}),
            rows,
        ),
        "v2-reordered-batch": (
            json.dumps({"input_data": {"columns": reversed_columns, "data": [r[::-1] for r in batch]}}),
            batch,
        ),
    }
    for request_id, (body, _) in forms.items():
        answer = httpx.post(
            f"{server.url}/score",
            content=body,
            headers={"Content-Type": "application/json", "X-Ms-Request-Id": request_id},
        )
        assert answer.status_code == 200
    server.stop()
    text = "".join(p.read_text() for p in server.settings.logs_dir.glob("*.jsonl"))
    records = {r["request_id"]: r for r in map(json.loads, text.splitlines())}
    assert set(records) == set(forms)
    for request_id, (_, expected) in forms.items():
        assert records[request_id]["inputs"] == expected


def test_the_serving_process_maps_no_library_scoring_does_not_need(server: Server) -> None:
    # The shared objects a process has loaded are in /proc/<pid>/maps: what it imported, seen from outside.
    httpx.post(f"{server.url}/score", json=PAYLOAD)
    maps = (Path("/proc") / str(server.process.pid) / "maps").read_text()
    assert "/numpy/" in maps
    for library in ("sklearn", "scipy", "pandas", "pyarrow", "matplotlib"):
        assert f"/{library}/" not in maps and f"/{library}.libs/" not in maps, library


def _refused_run(start_server: Callable[..., Server], tmp_path: Path, answer: int) -> tuple[Ingestion, Server]:
    """Five scored requests while Application Insights answers its first post with ``answer``, then stop."""
    ingestion = Ingestion(answers=[answer])
    # Spans leave in batches every 200 ms, so the refused batch goes (and is refused) before the next.
    server = start_server({**ingestion.env, "TMPDIR": str(tmp_path), "OTEL_BSP_SCHEDULE_DELAY": "200"})
    first = [httpx.post(f"{server.url}/score", json=PAYLOAD) for _ in range(4)]
    deadline = time.monotonic() + 30
    while not ingestion.answered and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ingestion.answered[:1] == [answer]
    started = time.monotonic()
    second = httpx.post(f"{server.url}/score", json=PAYLOAD)
    assert time.monotonic() - started < 2 and all(r.status_code == 200 for r in [*first, second])  # never waits
    server.stop()  # a graceful stop exports the last batch
    return ingestion, server


@pytest.mark.parametrize("answer", [429, 503])
def test_telemetry_application_insights_throttles_is_sent_again_once_it_accepts(
    start_server: Callable[..., Server], tmp_path: Path, answer: int
) -> None:
    """Throttled (429) or unavailable (503): the exporter keeps the batch and sends it with the next one."""
    ingestion, _ = _refused_run(start_server, tmp_path, answer)
    try:
        requests = [r["data"]["baseData"]["id"] for r in ingestion.of_type("RequestData")]
        assert len(requests) == 5 and len(set(requests)) == 5, ingestion.answered
        again = {r["data"]["baseData"]["id"] for r in ingestion.refused if r["data"]["baseType"] == "RequestData"}
        assert again and again <= set(requests)  # refused, then accepted on a later post
    finally:
        ingestion.close()


def test_telemetry_items_a_partial_answer_refuses_wait_on_disk_in_the_services_home(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """A 206 naming items as retriable: the exporter leases them for a minute before it sends them again; a
    stop within that minute leaves them in <home>/telemetry-retry, where the next start finds them."""
    ingestion, server = _refused_run(start_server, tmp_path, 206)
    try:
        refused = {r["data"]["baseData"]["id"] for r in ingestion.refused if r["data"]["baseType"] == "RequestData"}
        accepted = {r["data"]["baseData"]["id"] for r in ingestion.of_type("RequestData")}
        assert refused and not refused & accepted and len(refused | accepted) == 5
        kept = "".join(
            p.read_text(errors="replace") for p in (server.settings.home / "telemetry-retry").rglob("*.blob*")
        )
        assert all(request_id in kept for request_id in refused)
    finally:
        ingestion.close()
