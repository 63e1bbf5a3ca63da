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
from diabetes_mlops.serving.responses import error
from diabetes_mlops.serving.tensors import model_metadata, unknown_model

if TYPE_CHECKING:
    from diabetes_mlops.serving.endpoints import InferEndpoint
    from diabetes_mlops.serving.scorer import Scorer

EXTENSIONS = ["binary_tensor_data"]


def oip_routes(scorer: Scorer, infer: InferEndpoint) -> list[Route]:
    """The ``/v2`` routes that serve ``scorer``'s model, ``infer`` answering its inference requests."""
    name, version = scorer.served.name, scorer.served.version

    def missing(request: Request) -> Response | None:
        reason = unknown_model(request.path_params, name, version)
        return None if reason is None else error(404, reason)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": "diabetes-mlops", "version": __version__, "extensions": EXTENSIONS})

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        reason = scorer.ready()
        return JSONResponse({"ready": True}) if reason is None else error(503, reason)

    async def model_ready(request: Request) -> Response:
        return missing(request) or await ready(request)

    async def metadata(request: Request) -> Response:
        return missing(request) or JSONResponse(model_metadata(name, version))

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
