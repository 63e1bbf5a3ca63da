"""A loopback Application Insights ingestion endpoint: it accepts what the exporters send and keeps the items."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "00000000-0000-0000-0000-0000000000ab"
# Keep the SDK's own side channels (statsbeat, control plane, VM metadata probe) on this machine.
QUIET = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
}


class Ingestion:
    """The ``/v2.1/track`` endpoint on a free loopback port; ``items`` are the telemetry items received."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        items = self.items

        class Track(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                batch = json.loads(raw)
                items.extend({"path": self.path, **item} for item in batch)
                body = json.dumps({"itemsReceived": len(batch), "itemsAccepted": len(batch), "errors": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Track)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        port = self._server.server_address[1]
        self.connection_string = f"InstrumentationKey={KEY};IngestionEndpoint=http://127.0.0.1:{port}/"
        # The distro samples at most 5 traces a second, starting from zero: a test that sends a few keeps all.
        self.env = {**QUIET, "APPLICATIONINSIGHTS_CONNECTION_STRING": self.connection_string,
                    "OTEL_TRACES_SAMPLER": "always_on"}  # fmt: skip

    def of_type(self, base_type: str) -> list[dict[str, Any]]:
        """The items of one type: ``RequestData``, ``RemoteDependencyData``, ``MetricData``..."""
        return [item for item in self.items if item["data"]["baseType"] == base_type]

    def close(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()
