"""The OpenAPI document of the scoring service, served at ``/openapi.json``: ``/score``, the probes, and the Open
Inference Protocol's ``/v2`` routes (their schemas as the protocol's specification gives them)."""

from __future__ import annotations

from typing import Any

from diabetes_mlops import __version__
from diabetes_mlops.data import FEATURES
from diabetes_mlops.serving.tensors import DATATYPES, INPUT_NAME, OUTPUT_NAME

_ROW = {"type": "array", "items": {"type": "number"}, "minItems": len(FEATURES), "maxItems": len(FEATURES)}
_RECORD = {
    "type": "object",
    "properties": {name: {"type": "number"} for name in FEATURES},
    "required": list(FEATURES),
    "additionalProperties": False,
}
_ERROR = {
    "description": "What is wrong and where",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}

_JSON = "application/json"
_BINARY = "application/octet-stream"


def _ref(schema: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{schema}"}


def _answer(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": _ref(schema)}}}


def _get(summary: str, answer: dict[str, Any], *codes: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {"200": answer, **dict.fromkeys(codes, _ERROR)}}}


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
_HEADER_LENGTH = {
    "name": "Inference-Header-Content-Length",
    "in": "header",
    "description": "Binary tensor extension: the length of the JSON header; binary tensor data follows it",
    "schema": {"type": "integer", "minimum": 0},
}
_V2_SCHEMAS: dict[str, Any] = {
    "ServerMetadata": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "TensorMetadata": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    },
    "ModelMetadata": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": _ref("TensorMetadata")},
            "outputs": {"type": "array", "items": _ref("TensorMetadata")},
            "parameters": {"type": "object"},
        },
    },
    "InferenceRequest": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "example": INPUT_NAME},
                        "shape": {"type": "array", "items": {"type": "integer"}, "example": [1, len(FEATURES)]},
                        "datatype": {"type": "string", "enum": list(DATATYPES)},
                        "parameters": {
                            "type": "object",
                            "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
                        },
                        "data": {"type": "array", "description": f"rows of {len(FEATURES)} numbers, or them flat"},
                    },
                    "required": ["name", "shape", "datatype"],
                },
            },
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "enum": [OUTPUT_NAME]},
                        "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}},
                    },
                    "required": ["name"],
                },
            },
        },
        "required": ["inputs"],
    },
    "InferenceResponse": {
        "type": "object",
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "datatype": {"type": "string"},
                        "shape": {"type": "array", "items": {"type": "integer"}},
                        "parameters": {"type": "object"},
                        "data": {"type": "array", "items": {"type": "number"}},
                    },
                },
            },
        },
    },
}


def _v2_paths(with_key: bool) -> dict[str, Any]:
    """The Open Inference Protocol's routes; inference takes the key as ``/score`` does."""
    infer: dict[str, Any] = {
        "summary": "Predict for the rows of one [rows, 10] input tensor, as JSON or binary tensor data",
        "parameters": [_HEADER_LENGTH],
        "requestBody": {
            "required": True,
            "content": {
                _JSON: {
                    "schema": _ref("InferenceRequest"),
                    "example": {
                        "inputs": [
                            {
                                "name": INPUT_NAME,
                                "shape": [1, len(FEATURES)],
                                "datatype": "FP64",
                                "data": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
                            }
                        ]
                    },
                },
                _BINARY: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "responses": {
            "200": {
                "description": "The predictions as the output tensor (binary data when asked for)",
                "content": {_JSON: {"schema": _ref("InferenceResponse")}, _BINARY: {}},
            },
            **dict.fromkeys(("400", "401", "404", "413", "415"), _ERROR),
        },
    }
    if with_key:
        infer["security"] = [{"key": []}]
    ready = _answer("Ready", "Ready")
    metadata = _answer("The model's versions and tensors", "ModelMetadata")
    paths: dict[str, Any] = {
        "/v2": _get("Server metadata", _answer("Name, version, extensions", "ServerMetadata")),
        "/v2/health/live": _get("Alive", _answer("The process answers", "Live")),
        "/v2/health/ready": _get("Ready to score", ready, "503"),
    }
    for model, parameters in (
        ("/v2/models/{name}", [_NAME]),
        ("/v2/models/{name}/versions/{version}", [_NAME, _VERSION]),
    ):
        paths[model] = {"parameters": parameters, **_get("Model metadata", metadata, "404")}
        paths[f"{model}/ready"] = {"parameters": parameters, **_get("Model ready", ready, "404", "503")}
        paths[f"{model}/infer"] = {"parameters": parameters, "post": infer}
    return paths


def openapi_spec(with_key: bool) -> dict[str, Any]:
    """The spec; with a key configured, ``/score`` and inference declare bearer authentication."""
    score: dict[str, Any] = {
        "summary": "Predict disease progression for one or more rows",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {
                                "type": "object",
                                "properties": {"data": {"type": "array", "items": _ROW, "minItems": 1}},
                                "required": ["data"],
                            },
                            {
                                "type": "object",
                                "properties": {"data": {"type": "array", "items": _RECORD, "minItems": 1}},
                                "required": ["data"],
                            },
                            {
                                "type": "object",
                                "properties": {
                                    "input_data": {
                                        "type": "object",
                                        "properties": {
                                            "columns": {
                                                "type": "array",
                                                "items": {"type": "string", "enum": list(FEATURES)},
                                            },
                                            "data": {"type": "array", "items": _ROW, "minItems": 1},
                                        },
                                        "required": ["columns", "data"],
                                    }
                                },
                                "required": ["input_data"],
                            },
                        ]
                    },
                    "example": {"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]},
                }
            },
        },
        "responses": {
            "200": {
                "description": "One prediction per row, and the model that made them",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Scores"}}},
            },
            "400": _ERROR,
            "401": _ERROR,
            "413": _ERROR,
            "415": _ERROR,
        },
    }
    metrics: dict[str, Any] = {"summary": "Prometheus metrics", "responses": {"200": {"description": "Text format"}}}
    if with_key:
        score["security"] = metrics["security"] = [{"key": []}]
        metrics["responses"]["401"] = _ERROR
    return {
        "openapi": "3.1.0",
        "info": {"title": "diabetes-mlops scoring service", "version": __version__},
        "paths": {
            "/score": {"post": score},
            "/health": {"get": {"summary": "Alive", "responses": {"200": {"description": "The process answers"}}}},
            "/ready": {"get": {"summary": "Model loaded, and which", "responses": {"200": {"description": "Ready"}}}},
            "/metrics": {"get": metrics},
            **_v2_paths(with_key),
        },
        "components": {
            "schemas": {
                "Scores": {
                    "type": "object",
                    "properties": {
                        "result": {"type": "array", "items": {"type": "number"}},
                        "model": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}, "version": {"type": "integer"}},
                        },
                    },
                },
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
                "Live": {"type": "object", "properties": {"live": {"type": "boolean"}}},
                "Ready": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                **_V2_SCHEMAS,
            },
            "securitySchemes": {"key": {"type": "http", "scheme": "bearer"}},
        },
    }
