"""Listening on a port, or saying at once why not: which diabetes-mlops home holds it, or another program."""

from __future__ import annotations

import errno
import socket

from diabetes_mlops.deploy import runtime
from diabetes_mlops.errors import MlopsError

BACKLOG = 2048


class PortInUse(MlopsError):
    """A port cannot be listened on; the message names who holds it when that is known."""


def listen(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port``; PortInUse, before anything else starts, when that fails.

    With ``reuse_port`` several processes listen on the port, each on its own socket, and the kernel spreads
    new connections over them.
    """
    try:
        return socket.create_server((host, port), backlog=BACKLOG, reuse_port=reuse_port)
    except OSError as exc:
        raise PortInUse(_reason(host, port, exc)) from None


def reserve(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` that does not listen: it keeps the port for sockets that ``listen``
    with ``reuse_port``, which alone get its connections. PortInUse when the port is taken."""
    sock = socket.socket()  # IPv4, as ``listen``'s sockets
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(_reason(host, port, exc)) from None
    return sock


def check_free(port: int) -> None:
    """Raise PortInUse unless ``127.0.0.1:port`` can be listened on now."""
    listen("127.0.0.1", port).close()


def _reason(host: str, port: int, exc: OSError) -> str:
    if exc.errno != errno.EADDRINUSE:
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    entry = runtime.holder(port)
    if entry is None:
        return f"port {port} is in use by another program"
    return f"port {port} is in use by diabetes-mlops home {entry.home} ({entry.env}; stop it: {entry.stop_command()})"
