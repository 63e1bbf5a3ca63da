"""The simulated Azure's names on loopback: an HTTP proxy (``HTTPS_PROXY``/``HTTP_PROXY``) that never dials out.

SDKs build some addresses from names (``<account>.blob.<suffix>``, ``<registry>.<acr suffix>``, a container
group's FQDN, a load balancer's IP), and those names resolve nowhere here. Clients that honour the proxy
variables (requests and so azure-core, urllib) send such requests to this gateway: ``CONNECT host:443`` is
tunnelled to the loopback port serving that host (TLS ends there, with a test-CA certificate for the name),
and a plain ``GET http://host:port/...`` is forwarded to the loopback port that stands for that host. A host
with no route gets 403 and is recorded in ``refused``: nothing leaves the machine.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading

BUFFER = 65536


class Gateway:
    """Routes from host names (exact, or ``*.suffix``) to loopback ports."""

    def __init__(self) -> None:
        self._routes: dict[str, int] = {}
        self._lock = threading.Lock()
        self.refused: list[str] = []
        gateway = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                gateway._serve(self.request)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, host: str, port: int) -> None:
        """Send requests for ``host`` (or every host under ``*.suffix``) to loopback ``port``."""
        with self._lock:
            self._routes[host.lower()] = port

    def unroute(self, host: str) -> None:
        with self._lock:
            self._routes.pop(host.lower(), None)

    def port_for(self, host: str) -> int | None:
        host = host.lower()
        with self._lock:
            if host in self._routes:
                return self._routes[host]
            for pattern, port in self._routes.items():
                if pattern.startswith("*.") and host.endswith(pattern[1:]):
                    return port
        return None

    def _serve(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(BUFFER)
            if not chunk:
                return
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        if method == "CONNECT":
            host = target.rsplit(":", 1)[0]
        elif target.startswith("http://"):
            host_port, _, path = target[len("http://") :].partition("/")
            host = host_port.rsplit(":", 1)[0] if not host_port.endswith("]") else host_port
        else:
            self._refuse(client, target)
            return
        port = self.port_for(host)
        if port is None:
            self._refuse(client, host)
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=30)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        with upstream:
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                upstream.sendall(rest)
            else:  # one request per connection: a pooled client must not reuse it for another host
                headers = [h for h in lines[1:] if not h.lower().startswith(("connection:", "proxy-connection:"))]
                request = "\r\n".join([f"{method} /{path} {version}", *headers, "Connection: close", "", ""])
                upstream.sendall(request.encode("latin-1") + rest)
            _pipe(client, upstream)

    def _refuse(self, client: socket.socket, host: str) -> None:
        self.refused.append(host)
        body = f"simazure gateway: {host} is not simulated; nothing leaves this machine".encode()
        client.sendall(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], 300)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(BUFFER)
            if not data:
                return
            (b if sock is a else a).sendall(data)
