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
    """The ``/v2.1/track`` endpoint on a free loopback port; ``items`` are the telemetry items it accepted.

    ``answers`` are the statuses of the next posts, as the service answers when it is busy: 429 (throttled, with
    ``Retry-After``: nothing accepted), 206 (partial: the batch's request items refused with a retriable 500,
    the others accepted), 503; then 200 for every post. ``answered`` lists the status of each post, ``refused`` the
    items refused.
    """

    def __init__(self, answers: list[int] | None = None) -> None:
        self.items: list[dict[str, Any]] = []
        self.answered: list[int] = []
        self.refused: list[dict[str, Any]] = []  # the items a post was refused, to be sent again
        pending = list(answers or [])
        items, answered, refused_items, lock = self.items, self.answered, self.refused, threading.Lock()

        class Track(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                batch = json.loads(raw)
                with lock:
                    status = pending.pop(0) if pending else 200
                    answered.append(status)
                partial = {i for i, item in enumerate(batch) if item["data"]["baseType"] == "RequestData"}
                refused = partial if status == 206 else (set(range(len(batch))) if status != 200 else set())
                with lock:
                    items.extend({"path": self.path, **item} for i, item in enumerate(batch) if i not in refused)
                    refused_items.extend(batch[i] for i in sorted(refused))
                errors = [{"index": i, "statusCode": 500 if status == 206 else status, "message": "busy"}
                          for i in sorted(refused)]  # fmt: skip
                accepted = len(batch) - len(refused)
                body = json.dumps({"itemsReceived": len(batch), "itemsAccepted": accepted, "errors": errors}).encode()
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
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
