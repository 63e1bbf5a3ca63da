"""uvicorn's httptools protocol, with each response's head and body leaving in one send."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# What a response head that uvicorn writes on its own starts and ends with.
_HEAD_START = b"HTTP/1.1 "
_HEAD_END = b"\r\n\r\n"
_INTERIM = ord("1")  # the first digit of a 1xx status: a 100 Continue goes at once, the client waits on it


class _HeadHeldTransport:
    """A transport that holds a final response head until the next write and sends the two together.

    uvicorn writes a response's head when the app starts the response and its body when the app sends it:
    two sends, two TCP segments (uvicorn sets TCP_NODELAY) and two wake-ups of the client for every
    answer. For a single-row answer that cost more than the answer itself.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.writelines((head, data))
        elif data.startswith(_HEAD_START) and data.endswith(_HEAD_END) and data[len(_HEAD_START)] != _INTERIM:
            self._head = data
        else:
            self._transport.write(data)

    def close(self) -> None:
        # An app that fails after starting its answer: the head goes, then uvicorn closes, as before.
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol on a transport that sends each response's head with its body."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeadHeldTransport(transport))  # type: ignore[arg-type]
