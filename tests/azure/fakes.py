"""Test doubles at the edges the SDKs expose: a credential, an HTTP transport, a Kubernetes API server."""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from azure.core.credentials import AccessToken
from azure.core.pipeline._tools import is_rest as _is_rest
from azure.core.pipeline.transport import HttpTransport, RequestsTransportResponse
from azure.core.rest._requests_basic import RestRequestsTransportResponse


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class FakeCredential:
    """Hands out a JWT-shaped token for Azure ML (the SDK decodes it); never talks to anyone."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        claims = {"aud": "https://ml.azure.com", "oid": "00000000-0000-0000-0000-0000000000aa", "tid": "t-1"}
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.c2ln"
        return AccessToken(token, int(time.time()) + 3600)


@dataclass
class Call:
    """One request the SDK sent."""

    method: str
    url: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version", [None])[0]


Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]
Handler = Callable[[Call], Answer]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    hits: int = 0


@dataclass
class FakeTransport(HttpTransport):
    """Answers each request from the first route whose method and path regex match; records every call."""

    routes: list[Route] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    unmatched: list[Call] = field(default_factory=list)

    def on(self, method: str, path_regex: str, answer: Answer | Handler) -> FakeTransport:
        handler = answer if callable(answer) else (lambda call, a=answer: a)
        self.routes.insert(0, Route(method.upper(), re.compile(path_regex + r"$", re.IGNORECASE), handler))
        return self

    def find(self, method: str, path_regex: str) -> list[Call]:
        pattern = re.compile(path_regex + r"$", re.IGNORECASE)
        return [c for c in self.calls if c.method == method.upper() and pattern.search(c.path)]

    def send(self, request: Any, **kwargs: Any) -> Any:
        split = urlsplit(request.url)
        raw = request.data if request.data is not None else getattr(request, "content", None)
        if isinstance(raw, bytes | bytearray):
            raw = raw.decode()
        try:
            body = json.loads(raw) if isinstance(raw, str) and raw else raw
        except ValueError:
            body = raw
        call = Call(request.method, request.url, split.path, parse_qs(split.query), dict(request.headers), body)
        self.calls.append(call)
        for route in self.routes:
            if route.method == call.method and route.pattern.search(call.path):
                route.hits += 1
                answer = route.handler(call)
                break
        else:
            self.unmatched.append(call)
            answer = (404, {"error": {"code": "ResourceNotFound", "message": f"no fake for {call.method} {call.path}"}})
        status, payload, *rest = answer
        headers = {"Content-Type": "application/json", "x-ms-request-id": "fake", **(rest[0] if rest else {})}
        response = requests.Response()
        response.status_code = status
        response._content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        response.headers.update(headers)
        response.url = request.url
        response.reason = "OK" if status < 400 else "Error"
        response.raw = io.BytesIO(response._content)
        if _is_rest(request):  # newer generated clients send azure.core.rest requests and read .json()
            rest = RestRequestsTransportResponse(request=request, internal_response=response)
            rest.read()
            return rest
        return RequestsTransportResponse(request, response)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeTransport:
        return self

    def __exit__(self, *args: object) -> None:
        pass
