"""Application Insights: nothing at all without the connection string; spans to a loopback ingestion with it."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Keep the SDK's own side channels (statsbeat, control plane, VM metadata probe) on this machine.
QUIET = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
}

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


def test_with_a_connection_string_spans_and_metrics_reach_the_ingestion_endpoint(tmp_path: Path) -> None:
    received: list[dict[str, object]] = []

    class Ingestion(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            items = json.loads(raw)
            received.extend({"path": self.path, **item} for item in items)
            body = json.dumps({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingestion)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    key = "00000000-0000-0000-0000-0000000000ab"
    conn = f"InstrumentationKey={key};IngestionEndpoint=http://127.0.0.1:{port}/"
    try:
        # The distro samples at most 5 traces a second, starting from zero: sample all for a one-span test.
        out = _run({"APPLICATIONINSIGHTS_CONNECTION_STRING": conn, "OTEL_TRACES_SAMPLER": "always_on"}, tmp_path)
    finally:
        server.shutdown()
        server.server_close()

    assert out["enabled"] is True and out["flushed"] is True
    assert out["connects"] and all("127.0.0.1" in c for c in out["connects"])  # nothing left the machine
    assert all(r["path"] == "/v2.1/track" and r["iKey"] == key for r in received)
    spans = [r for r in received if r["data"]["baseType"] in ("RequestData", "RemoteDependencyData")]
    (span,) = [s for s in spans if s["data"]["baseData"]["name"] == "score"]
    assert span["tags"]["ai.cloud.role"] == "diabetes-scoring-test"
    properties = span["data"]["baseData"]["properties"]
    assert properties == {"model.name": "diabetes", "model.version": "7", "scoring.rows": "3"}
    metric_items = [r["data"]["baseData"] for r in received if r["data"]["baseType"] == "MetricData"]
    metrics = {m["name"] for item in metric_items for m in item["metrics"]}
    assert {"scoring.latency", "scoring.rows"} <= metrics
