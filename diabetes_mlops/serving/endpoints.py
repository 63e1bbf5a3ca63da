"""The scoring routes, ``/score`` and the Open Inference Protocol's ``infer``, as plain ASGI endpoints.

They are the service's hot path. A Starlette function endpoint makes a Request, a Response and two
exception-handling wrappers per call, which together cost more than parsing, predicting and logging a
row; here a request is its scope's headers, its body's chunks, and two messages back. Starlette still
routes to them when the fast path of ``app.py`` does not (404, 405).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson

from diabetes_mlops.monitoring.records import BinaryRows
from diabetes_mlops.serving.parsing import InputError, parse_body
from diabetes_mlops.serving.responses import INTERNAL_ERROR, JSON, error_body
from diabetes_mlops.serving.tensors import inference_response, parse_inference, unknown_model

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from diabetes_mlops.serving.metrics import ServiceMetrics
    from diabetes_mlops.serving.scorer import Call, Scorer

log = logging.getLogger(__name__)
BINARY_HEADER = "inference-header-content-length"
_JSON = JSON.encode()
_OCTETS = b"application/octet-stream"


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name; of a repeated one, the first (as Starlette's ``Headers.get``)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])}


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InputError(f"body: {declared} bytes is more than the limit of {limit}", status=413)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InputError("body: the client disconnected before sending all of it")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise InputError(f"body: more than the limit of {limit} bytes", status=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _ScoringEndpoint:
    """Begin and authorize the call, let ``respond`` parse and score, then send and count the answer.

    An InputError, from any step, is answered with its status and a JSON body that names the problem; any
    other failure with a JSON 500 that gives the request id, its traceback going to the server's log only.
    """

    def __init__(self, scorer: Scorer, metrics: ServiceMetrics) -> None:
        self.scorer = scorer
        self.metrics = metrics

    async def respond(self, scope: Scope, headers: dict[str, str], receive: Receive, call: Call) -> tuple[bytes, bytes]:
        """The answer's content type and body."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = request_headers(scope)
        call = self.scorer.begin(headers)
        status = 200
        try:
            self.scorer.authorize(headers)
            await self.scorer.admit()
            content_type, body = await self.respond(scope, headers, receive, call)
        except InputError as exc:
            status, content_type, body = exc.status, _JSON, error_body(exc.message)
            if exc.retry_after is not None:
                call.echo["retry-after"] = str(exc.retry_after)
        except Exception:
            log.exception("request %s failed", call.request_id)
            status, content_type, body = 500, _JSON, error_body(INTERNAL_ERROR)
        answer = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        answer += [(name.encode(), value.encode("latin-1")) for name, value in call.echo.items()]
        self.metrics.count(status)
        await send({"type": "http.response.start", "status": status, "headers": answer})
        await send({"type": "http.response.body", "body": body})


class ScoreEndpoint(_ScoringEndpoint):
    """``POST /score``: Azure ML's JSON (``{"data": rows}`` and its other forms) in, ``{"result": [...]}`` out."""

    async def respond(self, scope: Scope, headers: dict[str, str], receive: Receive, call: Call) -> tuple[bytes, bytes]:
        config = self.scorer.config
        content_type = headers.get("content-type", JSON).split(";")[0].strip().lower()
        if content_type != JSON:
            raise InputError(f"content type {content_type!r}: send application/json", status=415)
        parsed = parse_body(await read_body(receive, headers, config.max_body_bytes), config.max_rows)
        predictions = self.scorer.score(parsed.matrix, call, parsed.rows_json)
        body = {"result": predictions, "model": self.scorer.identity}
        return _JSON, orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


class InferEndpoint(_ScoringEndpoint):
    """``POST /v2/models/{name}[/versions/{version}]/infer``: one tensor, in JSON or the binary extension."""

    async def respond(self, scope: Scope, headers: dict[str, str], receive: Receive, call: Call) -> tuple[bytes, bytes]:
        served, config = self.scorer.served, self.scorer.config
        missing = unknown_model(scope["path_params"], served.name, served.version)
        if missing is not None:
            raise InputError(missing, status=404)
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding != "identity":
            raise InputError(f"content encoding {encoding!r}: send the body uncompressed", status=415)
        body = await read_body(receive, headers, config.max_body_bytes)
        parsed = parse_inference(body, headers.get(BINARY_HEADER), config.max_rows)
        predictions = self.scorer.score(parsed.matrix, call, BinaryRows(parsed.matrix) if parsed.binary_input else None)
        answer, header_length = inference_response(
            served.name, served.version, parsed.id or call.request_id, predictions, parsed.binary_output
        )
        if header_length is None:
            return _JSON, answer
        call.echo[BINARY_HEADER] = str(header_length)
        return _OCTETS, answer
