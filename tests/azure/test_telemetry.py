"""Application Insights: nothing at all without the connection string; spans to a loopback ingestion with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.appinsights import KEY, QUIET, Ingestion

# Runs in a fresh interpreter: OpenTelemetry's global providers can be set once per process. An audit hook
# records every socket connect, so the test can show nothing left the loopback interface.
SCRIPT = r"""
import json, sys
connects = []
sys.addaudithook(lambda event, args: connects.append(str(args[1])) if event == "socket.connect" else None)
from diabetes_mlops.monitoring.telemetry import configure_telemetry
telemetry = configure_telemetry("diabetes-scoring-test")
flushed = True
if telemetry is not None:
    with telemetry.span("diabetes", 7, rows=3):
        pass
    flushed = telemetry.flush(5000)
print(json.dumps({"enabled": telemetry is not None, "flushed": flushed, "connects": connects,
                  "azure": sorted(m for m in sys.modules if m == "azure" or m.startswith("azure.")),
                  "otel": any(m.startswith("opentelemetry") for m in sys.modules)}))
"""


def _run(env: dict[str, str], tmp_path: Path) -> dict[str, object]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("APPLICATIONINSIGHTS_")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**base, **QUIET, "TMPDIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_a_connection_string_nothing_is_configured_or_imported(tmp_path: Path) -> None:
    out = _run({}, tmp_path)
    assert out == {"enabled": False, "flushed": True, "connects": [], "azure": [], "otel": False}


def test_with_a_connection_string_spans_and_metrics_reach_the_ingestion_endpoint(
    tmp_path: Path, appinsights: Ingestion
) -> None:
    out = _run(appinsights.env, tmp_path)

    assert out["enabled"] is True and out["flushed"] is True
    assert out["connects"] and all("127.0.0.1" in c for c in out["connects"])  # nothing left the machine
    assert all(r["path"] == "/v2.1/track" and r["iKey"] == KEY for r in appinsights.items)
    spans = appinsights.of_type("RequestData") + appinsights.of_type("RemoteDependencyData")
    (span,) = [s for s in spans if s["data"]["baseData"]["name"] == "score"]
    assert span["tags"]["ai.cloud.role"] == "diabetes-scoring-test"
    properties = span["data"]["baseData"]["properties"]
    assert properties == {"model.name": "diabetes", "model.version": "7", "scoring.rows": "3"}
    metrics = {m["name"] for item in appinsights.of_type("MetricData") for m in item["data"]["baseData"]["metrics"]}
    assert {"scoring.latency", "scoring.rows"} <= metrics
