"""The Open Inference Protocol's routes (KServe V2, as Triton and Seldon MLServer serve it), on the Scorer.

``/v2`` (server metadata), ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/{name}[/versions/{v}]``
(model metadata), ``.../ready`` and ``.../infer`` with JSON tensors or the binary tensor extension. The
key, limits, errors, scoring log and metrics are the ones of ``/score``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from diabetes_mlops import __version__
from diabetes_mlops.serving.parsing import InputError
from diabetes_mlops.serving.responses import JSON, error, read_body
from diabetes_mlops.serving.tensors import inference_response, model_metadata, parse_inference

if TYPE_CHECKING:
    from diabetes_mlops.serving.metrics import ServiceMetrics
    from diabetes_mlops.serving.scorer import Scorer

BINARY_HEADER = "inference-header-content-length"
EXTENSIONS = ["binary_tensor_data"]


def oip_routes(scorer: Scorer, metrics: ServiceMetrics) -> list[Route]:
    """The ``/v2`` routes that serve ``scorer``'s model; ``metrics`` count their answers."""
    name, version = scorer.served.name, scorer.served.version

    def unknown_model(request: Request) -> Response | None:
        return _unknown_model(request, name, version)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": "diabetes-mlops", "version": __version__, "extensions": EXTENSIONS})

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        reason = scorer.ready()
        return JSONResponse({"ready": True}) if reason is None else error(503, reason)

    async def model_ready(request: Request) -> Response:
        return unknown_model(request) or await ready(request)

    async def metadata(request: Request) -> Response:
        return unknown_model(request) or JSONResponse(model_metadata(name, version))

    async def infer(request: Request) -> Response:
        return await _infer(request, scorer, metrics)

    model = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    return [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route(model, metadata, methods=["GET"]),
        Route(versioned, metadata, methods=["GET"]),
        Route(f"{model}/ready", model_ready, methods=["GET"]),
        Route(f"{versioned}/ready", model_ready, methods=["GET"]),
        Route(f"{model}/infer", infer, methods=["POST"]),
        Route(f"{versioned}/infer", infer, methods=["POST"]),
    ]


def _unknown_model(request: Request, name: str, version: int) -> Response | None:
    """404 unless the path names the served model (and version, when it gives one)."""
    asked, asked_version = request.path_params["name"], request.path_params.get("version")
    if asked != name:
        return error(404, f"model {asked!r} is not served here; this server serves {name!r}")
    if asked_version is not None and asked_version != str(version):
        return error(404, f"model {name!r} has no version {asked_version!r} here; it serves version {version}")
    return None


async def _infer(request: Request, scorer: Scorer, metrics: ServiceMetrics) -> Response:
    """Parse one tensor, score it, answer in JSON or binary; every answer is counted."""
    name, version, config = scorer.served.name, scorer.served.version, scorer.config
    headers = request.headers
    call = scorer.begin(headers)
    try:
        scorer.authorize(headers)
        missing = _unknown_model(request, name, version)
        if missing is not None:
            return metrics.count(missing)
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding != "identity":
            raise InputError(f"content encoding {encoding!r}: send the body uncompressed", status=415)
        body = await read_body(request, config.max_body_bytes)
        parsed = parse_inference(body, headers.get(BINARY_HEADER), config.max_rows)
        predictions = scorer.score(parsed.matrix, call)
    except InputError as exc:
        return metrics.count(error(exc.status, exc.message, call.echo))
    answer, header_length = inference_response(
        name, version, parsed.id or call.request_id, predictions, parsed.binary_output
    )
    if header_length is None:
        return metrics.count(Response(answer, media_type=JSON, headers=call.echo))
    call.echo[BINARY_HEADER] = str(header_length)
    return metrics.count(Response(answer, media_type="application/octet-stream", headers=call.echo))
