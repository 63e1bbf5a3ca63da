"""Open Inference Protocol (KServe V2) tensors: an inference request in, one float64 matrix out, and back.

A request is a JSON header, optionally followed by the binary tensor extension's raw bytes: the header's
length is then the ``Inference-Header-Content-Length`` header, and each input with a ``binary_data_size``
parameter takes that many bytes, in order. The model takes one input tensor of shape ``[n, 10]`` (the
columns in ``data.FEATURES`` order) and answers one output, ``predict``, of shape ``[n, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from diabetes_mlops.data import FEATURES
from diabetes_mlops.serving.parsing import InputError, flat_matrix, require_finite, rows_matrix

INPUT_NAME = "features"
OUTPUT_NAME = "predict"
# The datatypes of the protocol a number column can come in, and their little-endian numpy types.
DATATYPES = {
    "FP64": "<f8",
    "FP32": "<f4",
    "FP16": "<f2",
    "INT64": "<i8",
    "INT32": "<i4",
    "INT16": "<i2",
    "INT8": "i1",
    "UINT64": "<u8",
    "UINT32": "<u4",
    "UINT16": "<u2",
    "UINT8": "u1",
}


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    """The rows of a request as a matrix, its id when it gave one, and whether they came and go as binary data."""

    matrix: np.ndarray
    id: str | None
    binary_input: bool
    binary_output: bool


def _object(value: object, where: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise InputError(f"{where}: expected a JSON object")
    return value


def _shape(tensor: dict[str, Any], max_rows: int) -> int:
    """The number of rows of an input of shape [n, 10]."""
    shape = tensor.get("shape")
    if type(shape) is not list or len(shape) != 2 or not all(type(d) is int for d in shape):
        raise InputError(f"inputs[0].shape: expected [rows, {len(FEATURES)}], got {orjson.dumps(shape).decode()}")
    rows, columns = shape
    if columns != len(FEATURES):
        raise InputError(f"inputs[0].shape: expected {len(FEATURES)} columns ({', '.join(FEATURES)}), got {columns}")
    if rows < 1:
        raise InputError("inputs[0].shape: expected at least one row")
    if rows > max_rows:
        raise InputError(f"inputs[0]: {rows} rows is more than the limit of {max_rows}", status=413)
    return rows


def _binary_output(header: dict[str, Any]) -> bool:
    """Whether the answer goes as binary data: asked for the whole request or for the one output."""
    parameters = header.get("parameters")
    wanted = type(parameters) is dict and parameters.get("binary_data_output") is True
    outputs = header.get("outputs")
    if outputs is None:
        return wanted
    if type(outputs) is not list:
        raise InputError("outputs: expected a list")
    for i, output in enumerate(outputs):
        name = _object(output, f"outputs[{i}]").get("name")
        if name != OUTPUT_NAME:
            raise InputError(f"outputs[{i}]: unknown output {name!r}; the model's output is {OUTPUT_NAME!r}")
        output_parameters = output.get("parameters")
        if type(output_parameters) is dict and "binary_data" in output_parameters:
            wanted = output_parameters["binary_data"] is True
    return wanted


def parse_inference(body: bytes, header_length: str | None, max_rows: int) -> InferenceRequest:
    """Decode an inference request (JSON, or JSON then binary tensors); a bad one is an InputError."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise InputError(f"Inference-Header-Content-Length: {header_length!r} is not a length within the body")
        json_part, binary = body[: int(header_length)], body[int(header_length) :]
    try:
        header = _object(orjson.loads(json_part), "body")
    except orjson.JSONDecodeError as exc:
        raise InputError(f"body: malformed JSON ({exc})") from None
    inputs = header.get("inputs")
    if type(inputs) is not list or len(inputs) != 1:
        raise InputError(f"inputs: expected one input tensor of shape [rows, {len(FEATURES)}]")
    tensor = _object(inputs[0], "inputs[0]")
    rows = _shape(tensor, max_rows)
    datatype = tensor.get("datatype")
    if datatype not in DATATYPES:
        raise InputError(f"inputs[0].datatype: {datatype!r} is not a number type ({', '.join(DATATYPES)})")
    parameters = tensor.get("parameters")
    size = parameters.get("binary_data_size") if type(parameters) is dict else None
    if size is not None:
        matrix = _binary_matrix(binary, size, rows, np.dtype(DATATYPES[datatype]))
    else:
        if binary:
            raise InputError("body: binary data after the JSON header, but no input has binary_data_size")
        data = tensor.get("data")
        if type(data) is not list or not data:
            raise InputError("inputs[0].data: expected a list of numbers")
        matrix = rows_matrix(data) if type(data[0]) is list else flat_matrix(data, rows)
        if len(matrix) != rows:
            raise InputError(f"inputs[0].data: {len(matrix)} rows for a shape of {rows}")
    request_id = header.get("id")
    request_id = request_id if type(request_id) is str else None
    return InferenceRequest(matrix, request_id, binary_input=size is not None, binary_output=_binary_output(header))


def _binary_matrix(binary: bytes, size: object, rows: int, dtype: np.dtype) -> np.ndarray:
    expected = rows * len(FEATURES) * dtype.itemsize
    if type(size) is not int or size != expected or len(binary) != size:
        raise InputError(
            f"inputs[0].parameters.binary_data_size: {rows} rows of {len(FEATURES)} {dtype.name} take "
            f"{expected} bytes; declared {size!r}, sent {len(binary)}"
        )
    matrix = np.frombuffer(binary, dtype=dtype).reshape(rows, len(FEATURES)).astype(np.float64)
    require_finite(matrix)
    return matrix


def inference_response(
    name: str, version: int, request_id: str, predictions: np.ndarray, binary: bool
) -> tuple[bytes, int | None]:
    """The answer's body, and the JSON header's length when the output goes as binary data."""
    output: dict[str, Any] = {"name": OUTPUT_NAME, "datatype": "FP64", "shape": [len(predictions), 1]}
    answer = {"model_name": name, "model_version": str(version), "id": request_id, "outputs": [output]}
    if not binary:
        output["data"] = predictions
        return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY), None
    raw = np.ascontiguousarray(predictions, dtype="<f8").tobytes()
    output["parameters"] = {"binary_data_size": len(raw)}
    header = orjson.dumps(answer)
    return header + raw, len(header)


def unknown_model(path_params: dict[str, str], name: str, version: int) -> str | None:
    """Why a ``/v2/models/{name}[/versions/{version}]`` path does not name the served model, or None."""
    asked, asked_version = path_params["name"], path_params.get("version")
    if asked != name:
        return f"model {asked!r} is not served here; this server serves {name!r}"
    if asked_version is not None and asked_version != str(version):
        return f"model {name!r} has no version {asked_version!r} here; it serves version {version}"
    return None


def model_metadata(name: str, version: int) -> dict[str, Any]:
    """The model's metadata: its versions, input and output tensors (the feature order as a parameter)."""
    return {
        "name": name,
        "versions": [str(version)],
        "platform": "sklearn",
        "inputs": [{"name": INPUT_NAME, "datatype": "FP64", "shape": [-1, len(FEATURES)]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP64", "shape": [-1, 1]}],
        "parameters": {"columns": list(FEATURES)},
    }
