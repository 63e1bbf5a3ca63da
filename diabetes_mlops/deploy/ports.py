"""Listening on a port, or saying at once why not: which diabetes-mlops home holds it, or another program."""

from __future__ import annotations

import errno
import socket

from diabetes_mlops.deploy import runtime
from diabetes_mlops.errors import MlopsError

BACKLOG = 2048


class PortInUse(MlopsError):
    """A port cannot be listened on; the message names who holds it when that is known."""


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; PortInUse, before anything else starts, when that fails."""
    try:
        return socket.create_server((host, port), backlog=BACKLOG)
    except OSError as exc:
        raise PortInUse(_reason(host, port, exc)) from None


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
