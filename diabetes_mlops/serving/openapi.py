"""The OpenAPI document of the scoring service, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from diabetes_mlops import __version__
from diabetes_mlops.data import FEATURES

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


def openapi_spec(with_key: bool) -> dict[str, Any]:
    """The spec; with a key configured, ``/score`` declares bearer authentication."""
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
    if with_key:
        score["security"] = [{"key": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "diabetes-mlops scoring service", "version": __version__},
        "paths": {
            "/score": {"post": score},
            "/health": {"get": {"summary": "Alive", "responses": {"200": {"description": "The process answers"}}}},
            "/ready": {"get": {"summary": "Model loaded, and which", "responses": {"200": {"description": "Ready"}}}},
            "/metrics": {
                "get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Text format"}}}
            },
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
            },
            "securitySchemes": {"key": {"type": "http", "scheme": "bearer"}},
        },
    }
