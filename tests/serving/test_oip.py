"""The Open Inference Protocol, driven by its official clients (tritonclient, kserve) and in-process.

The scorer is tested in-process through Starlette's TestClient (no server, no port) and the same routes
over loopback with Triton's HTTP client (JSON and binary tensors) and KServe's REST client, which runs in
a venv of its own (.tools/kserve, made by scripts/test.sh) because its pins clash with ours.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as triton
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from starlette.testclient import TestClient
from tritonclient.utils import InferenceServerException

from diabetes_mlops.artifacts import MODEL_FILE, load_model
from diabetes_mlops.config import load_settings
from diabetes_mlops.data import FEATURES
from diabetes_mlops.monitoring.blob import BlobLogStore
from diabetes_mlops.monitoring.store import LocalLogStore
from diabetes_mlops.serving.app import create_app
from diabetes_mlops.serving.metrics import ServiceMetrics
from diabetes_mlops.serving.model import ServedModel
from diabetes_mlops.serving.scorer import Scorer, ServiceConfig
from tests.azure.azurite import Azurite
from tests.conftest import REPO
from tests.serving.conftest import Server, register_model

KSERVE_PYTHON = REPO / ".tools" / "kserve" / "bin" / "python"
KEY = "oip-k3y-for-tests"
ROWS = np.array([[59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87], [48, 1, 21.6, 87, 183, 103.2, 70, 3, 3.8918, 69]])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = load_settings(home=tmp_path_factory.mktemp("oip-home"))
    return settings.registry_dir / settings.model_name / str(register_model(settings))


@pytest.fixture(scope="module")
def served(model_dir: Path) -> ServedModel:
    return ServedModel.from_dir(model_dir)


@pytest.fixture(scope="module")
def client(served: ServedModel) -> Iterator[TestClient]:
    with TestClient(create_app(Scorer(served, ServiceConfig(max_rows=100), metrics=ServiceMetrics()))) as http:
        yield http


def test_openapi_documents_every_route_and_its_inference_example_is_answered(
    client: TestClient, served: ServedModel
) -> None:
    spec = client.get("/openapi.json").json()
    routes = client.app.routes  # type: ignore[attr-defined]
    served_routes = {(r.path, m.lower()) for r in routes for m in r.methods if m != "HEAD"}
    documented = {(path, method) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    assert documented == served_routes - {("/openapi.json", "get")}
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', json.dumps(spec)))
    assert refs <= set(spec["components"]["schemas"])
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        infer = spec["paths"][path]["post"]
        assert "security" not in infer  # no key configured here
        example = infer["requestBody"]["content"]["application/json"]["example"]
        url = path.format(name=served.name, version=served.version)
        assert client.post(url, json=example).status_code == 200


def infer_body(rows: np.ndarray, datatype: str = "FP64") -> dict[str, object]:
    return {
        "inputs": [{"name": "features", "shape": list(rows.shape), "datatype": datatype, "data": rows.ravel().tolist()}]
    }


def test_health_and_metadata_in_process(client: TestClient, served: ServedModel) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    meta = client.get(f"/v2/models/{served.name}").json()
    assert meta["versions"] == [str(served.version)] and meta["inputs"][0]["shape"] == [-1, len(FEATURES)]
    assert meta["parameters"]["columns"] == list(FEATURES)
    assert client.get(f"/v2/models/{served.name}/versions/{served.version}/ready").json() == {"ready": True}
    missing = client.get("/v2/models/other")
    assert missing.status_code == 404 and "'other' is not served" in missing.json()["error"]


def test_json_and_score_agree_in_process(client: TestClient, served: ServedModel) -> None:
    answer = client.post(
        f"/v2/models/{served.name}/versions/{served.version}/infer", json={"id": "x1", **infer_body(ROWS)}
    )
    assert answer.status_code == 200
    out = answer.json()
    assert out["id"] == "x1" and out["model_version"] == str(served.version)
    assert out["outputs"][0]["shape"] == [2, 1]
    score = client.post("/score", json={"data": ROWS.tolist()}).json()["result"]
    assert out["outputs"][0]["data"] == pytest.approx(score, rel=1e-12)


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"inputs": []}, 400, "one input tensor"),
        ({"inputs": [{"name": "x", "shape": [1, 9], "datatype": "FP64", "data": [1] * 9}]}, 400, "10 columns"),
        ({"inputs": [{"name": "x", "shape": [1, 10], "datatype": "BYTES", "data": ["a"] * 10}]}, 400, "not a number"),
        ({"inputs": [{"name": "x", "shape": [2, 10], "datatype": "FP64", "data": [1] * 10}]}, 400, "10 values"),
        ({"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP64", "data": [1] * 9 + ["a"]}]}, 400, "'s6'"),
        ({"inputs": [{"name": "x", "shape": [101, 10], "datatype": "FP64", "data": [1] * 1010}]}, 413, "limit"),
        ({**infer_body(ROWS), "outputs": [{"name": "proba"}]}, 400, "unknown output"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(
    client: TestClient, served: ServedModel, body: dict[str, object], status: int, fragment: str
) -> None:
    answer = client.post(f"/v2/models/{served.name}/infer", json=body)
    assert answer.status_code == status and fragment in answer.json()["error"], answer.text


def test_binary_lengths_that_lie_are_refused(client: TestClient, served: ServedModel) -> None:
    header = json.dumps(
        {"inputs": [{"name": "x", "shape": [2, 10], "datatype": "FP64", "parameters": {"binary_data_size": 160}}]}
    ).encode()
    raw = ROWS.astype("<f8").tobytes()
    url = f"/v2/models/{served.name}/infer"
    short = client.post(url, content=header + raw[:-8], headers={"Inference-Header-Content-Length": str(len(header))})
    assert short.status_code == 400 and "sent 152" in short.json()["error"]
    beyond = client.post(url, content=header, headers={"Inference-Header-Content-Length": "99999"})
    assert beyond.status_code == 400 and "Inference-Header-Content-Length" in beyond.json()["error"]
    nan = client.post(
        url,
        content=header + np.full((2, 10), np.nan).tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert nan.status_code == 400 and "row 0, column 'age'" in nan.json()["error"]


@settings(max_examples=40, deadline=None)
@given(
    matrix=arrays(np.float64, st.tuples(st.integers(1, 20), st.just(10)), elements=st.floats(-1e6, 1e6)),
    datatype=st.sampled_from(["FP64", "FP32", "INT32"]),
)
def test_any_finite_matrix_scores_as_the_model_does(
    client: TestClient, served: ServedModel, model_dir: Path, matrix: np.ndarray, datatype: str
) -> None:
    typed = matrix.astype({"FP64": "<f8", "FP32": "<f4", "INT32": "<i4"}[datatype])
    answer = client.post(f"/v2/models/{served.name}/infer", json=infer_body(typed, datatype))
    pipeline = load_model(model_dir / MODEL_FILE, json.loads((model_dir / "metadata.json").read_text())["sha256"])
    expected = pipeline.predict(pd.DataFrame(typed.astype(np.float64), columns=list(FEATURES)))
    assert answer.json()["outputs"][0]["data"] == pytest.approx(expected.tolist(), rel=1e-9, abs=1e-6)


@pytest.fixture(scope="module")
def keyed(start_server: Callable[..., Server]) -> Server:
    return start_server({"DIABETES_MLOPS_SCORING_KEY": KEY})


def triton_input(rows: np.ndarray, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("features", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    return tensor


@pytest.mark.parametrize("binary", [False, True])
def test_tritonclient_json_and_binary(keyed: Server, binary: bool) -> None:
    http = triton.InferenceServerClient(keyed.url.removeprefix("http://"))
    auth = {"Authorization": f"Bearer {KEY}"}
    assert http.is_server_live() and http.is_server_ready() and http.is_model_ready("diabetes", "1")
    assert http.get_model_metadata("diabetes")["outputs"][0]["name"] == "predict"
    outputs = [triton.InferRequestedOutput("predict", binary_data=binary)]
    result = http.infer(
        "diabetes",
        [triton_input(ROWS, binary)],
        model_version="1",
        outputs=outputs,
        headers=dict(auth),
        request_id="t-1",
    )
    expected = httpx.post(f"{keyed.url}/score", json={"data": ROWS.tolist()}, headers=auth).json()["result"]
    assert result.as_numpy("predict").ravel().tolist() == pytest.approx(expected, rel=1e-12)
    assert result.get_response()["id"] == "t-1"
    with pytest.raises(InferenceServerException, match="missing or invalid key"):
        http.infer("diabetes", [triton_input(ROWS, binary)])
    with pytest.raises(InferenceServerException, match="no version '7'"):
        http.infer("diabetes", [triton_input(ROWS, binary)], model_version="7", headers=dict(auth))


def test_oip_requests_are_logged_and_counted_like_score(start_server: Callable[..., Server]) -> None:
    server = start_server()
    http = triton.InferenceServerClient(server.url.removeprefix("http://"))
    http.infer("diabetes", [triton_input(ROWS, True)], headers={"X-Ms-Request-Id": "oip-binary"})
    http.infer("diabetes", [triton_input(ROWS, False)], headers={"X-Ms-Request-Id": "oip-json"})
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'scoring_requests_total{status="200"} 2.0' in metrics and "scoring_rows_total 4.0" in metrics
    server.stop()
    records = {r["request_id"]: r for r in LocalLogStore(server.settings.logs_dir).read()}
    for request_id in ("oip-binary", "oip-json"):
        assert records[request_id]["inputs"] == ROWS.tolist() and len(records[request_id]["predictions"]) == 2
    # On disk, rows sent as binary tensors stay binary (base64 of their doubles); rows sent as JSON stay numbers.
    raw = b"".join(path.read_bytes() for path in sorted(server.settings.logs_dir.glob("*.jsonl")))
    lines = {r["request_id"]: r for r in map(orjson.loads, raw.splitlines())}
    tensor = lines["oip-binary"]["inputs"]
    assert tensor["datatype"] == "FP64" and tensor["shape"] == [2, 10]
    assert base64.b64decode(tensor["base64"]) == ROWS.astype("<f8").tobytes()
    assert lines["oip-json"]["inputs"] == ROWS.tolist()


def test_binary_requests_logged_to_blob_storage_read_back_as_rows(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """The Azure targets' log path whole: a served process logging to Blob Storage (Azurite), tritonclient's
    binary and JSON tensors, and the kit's reader over what arrived."""
    azurite = Azurite(tmp_path / "azurite")
    azurite.start()
    try:
        server = start_server({"DIABETES_MLOPS_AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string})
        http = triton.InferenceServerClient(server.url.removeprefix("http://"))
        http.infer("diabetes", [triton_input(ROWS, True)], headers={"X-Ms-Request-Id": "blob-binary"})
        http.infer("diabetes", [triton_input(ROWS, False)], headers={"X-Ms-Request-Id": "blob-json"})
        server.stop()  # the scoring log's shutdown sends the batch still filling
        settings = load_settings(home=tmp_path / "reader", azure_storage_connection_string=azurite.connection_string)
        store = BlobLogStore.from_settings(settings)
        raw = b"".join(store.container.download_blob(b.name).readall() for b in store.container.list_blobs())
        lines = {r["request_id"]: r for r in map(orjson.loads, raw.splitlines())}
        assert base64.b64decode(lines["blob-binary"]["inputs"]["base64"]) == ROWS.astype("<f8").tobytes()
        assert lines["blob-json"]["inputs"] == ROWS.tolist()
        records = {r["request_id"]: r for r in store.read()}
        assert records["blob-binary"]["inputs"] == records["blob-json"]["inputs"] == ROWS.tolist()
    finally:
        azurite.stop()


KSERVE_SCRIPT = r"""
import asyncio, json, sys
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

async def main(url, key, rows):
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
    auth = {"Authorization": f"Bearer {key}"}
    out = {"live": await client.is_server_live(url), "ready": await client.is_model_ready(url, "diabetes")}
    for binary in (False, True):
        tensor = InferInput("features", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        response = await client.infer(url, InferRequest("diabetes", [tensor]), model_name="diabetes", headers=auth)
        out["binary" if binary else "json"] = response.outputs[0].as_numpy().ravel().tolist()
    await client.close()
    print(json.dumps(out))

asyncio.run(main(sys.argv[1], sys.argv[2], np.array(json.loads(sys.argv[3]), dtype=np.float64)))
"""


def test_kserve_client(keyed: Server, tmp_path: Path) -> None:
    assert KSERVE_PYTHON.exists(), "run scripts/test.sh: it makes the kserve client's venv"
    done = subprocess.run(
        [str(KSERVE_PYTHON), "-c", KSERVE_SCRIPT, keyed.url, KEY, json.dumps(ROWS.tolist())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    expected = httpx.post(
        f"{keyed.url}/score", json={"data": ROWS.tolist()}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert out["live"] is True and out["ready"] is True
    assert out["json"] == pytest.approx(expected.json()["result"], rel=1e-12) == out["binary"]
