"""Each answer's head and body leave the server in one send; a 100 Continue still goes at once."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from diabetes_mlops.serving.protocol import _HeadHeldTransport
from tests.serving.conftest import Server

ROW = [59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]
BODY = json.dumps({"data": [ROW]}).encode()


def connect(server: Server) -> socket.socket:
    url = urlsplit(server.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request_head(content_length: int, extra: str = "") -> bytes:
    return (
        f"POST /score HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {content_length}\r\n{extra}\r\n"
    ).encode()


def is_whole(answer: bytes) -> bool:
    """An answer with its head and all the body its Content-Length announces."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lengths = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return bool(lengths) and len(body) == int(lengths[0].split(b":")[1])


def test_every_answer_arrives_whole_in_the_first_read(start_server: Callable[..., Server]) -> None:
    """A client's first read after sending gets the whole answer: head and body came in one segment.

    Sent apart (as uvicorn does), the first read wakes on the head alone in most of these requests.
    """
    server = start_server()
    with connect(server) as sock:
        for _ in range(50):
            sock.sendall(request_head(len(BODY)) + BODY)
            first = sock.recv(65536)
            assert first.startswith(b"HTTP/1.1 200 OK\r\n") and is_whole(first), first


def test_a_100_continue_is_sent_before_the_body_is(start_server: Callable[..., Server]) -> None:
    """A client that waits for 100 Continue before it sends its body gets it (held, both sides would wait)."""
    server = start_server()
    with connect(server) as sock:
        sock.sendall(request_head(len(BODY), "Expect: 100-continue\r\n"))
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(BODY)
        answer = b""
        while not is_whole(answer):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and json.loads(answer.partition(b"\r\n\r\n")[2])["result"]


class Sent:
    """What reaches the transport underneath: each call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[bytes]]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", [data]))

    def writelines(self, lines: tuple[bytes, ...]) -> None:
        self.calls.append(("writelines", list(lines)))

    def close(self) -> None:
        self.calls.append(("close", []))

    def get_extra_info(self, name: str) -> str:
        return f"info {name}"


def test_a_head_waits_for_its_body_and_goes_before_a_close() -> None:
    sent = Sent()
    transport = _HeadHeldTransport(sent)  # type: ignore[arg-type]
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    transport.write(head)
    assert sent.calls == []
    transport.write(b"{}")
    assert sent.calls == [("writelines", [head, b"{}"])]
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    transport.write(interim)  # a client waits on it: never held
    error = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 5\r\n\r\n"
    transport.write(error)
    transport.close()  # an app that failed after starting its answer
    assert sent.calls[1:] == [("write", [interim]), ("write", [error]), ("close", [])]
    assert transport.get_extra_info("peername") == "info peername"
