"""An HTTP proxy that leads Azure host names to scoring servers on loopback; it never dials out.

Python's urllib (the smoke test's client) sends every plain-HTTP request to ``http_proxy`` with the absolute
URL, so a test can give a fake ACI FQDN or AKS load-balancer address a real service behind it.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade"}


class LoopbackProxy:
    """``routes`` maps ``host:port`` as clients ask for it to a port on 127.0.0.1; anything else gets 502."""

    def __init__(self) -> None:
        self.routes: dict[str, int] = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                url = urlsplit(self.path)
                port = proxy.routes.get(f"{url.hostname}:{url.port or 80}")
                if port is None:
                    self.send_error(502, f"no route to {url.netloc} on loopback")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    upstream.request(self.command, url.path + (f"?{url.query}" if url.query else ""), body, headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                except OSError as exc:
                    self.send_error(502, f"{url.netloc}: {exc}")
                    return
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_BY_HOP | {"content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LoopbackProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *args: object) -> None:
        self.server.shutdown()
        self.server.server_close()
