"""The scoring routes as plain ASGI endpoints, in-process: bodies in chunks, the size limit without a declared
length, and an unexpected failure answered as JSON."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import orjson
import pytest
from starlette.testclient import TestClient

from diabetes_mlops.config import load_settings
from diabetes_mlops.serving.app import create_app
from diabetes_mlops.serving.metrics import ServiceMetrics
from diabetes_mlops.serving.model import ServedModel
from diabetes_mlops.serving.scorer import Scorer, ServiceConfig
from tests.serving.conftest import register_model

ROW = [59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]
INFER = "/v2/models/diabetes/infer"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    settings = load_settings(home=tmp_path_factory.mktemp("home"))
    version = register_model(settings)
    return ServedModel.from_dir(settings.registry_dir / settings.model_name / str(version))


def client(served: ServedModel, config: ServiceConfig | None = None) -> TestClient:
    scorer = Scorer(served, config or ServiceConfig(), metrics=ServiceMetrics())
    return TestClient(create_app(scorer), raise_server_exceptions=False)


def in_pieces(body: bytes, size: int) -> Iterator[bytes]:
    """The body as a client streams it: chunked, with no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_body_sent_in_chunks_is_scored_whole(served: ServedModel) -> None:
    rows = [ROW, [r + 1 for r in ROW], [r * 2 for r in ROW]]
    body = orjson.dumps({"data": rows})
    with client(served) as http:
        whole = http.post("/score", content=body, headers={"content-type": "application/json"})
        chunked = http.post("/score", content=in_pieces(body, 7), headers={"content-type": "application/json"})
    assert whole.status_code == chunked.status_code == 200
    assert chunked.json()["result"] == whole.json()["result"]
    assert chunked.json()["result"] == pytest.approx(served.predict(np.array(rows)).tolist())


def test_a_streamed_body_over_the_limit_is_a_413_that_names_the_limit(served: ServedModel) -> None:
    body = orjson.dumps({"data": [ROW] * 50})
    with client(served, ServiceConfig(max_body_bytes=len(body) - 1)) as http:
        answer = http.post("/score", content=in_pieces(body, 64), headers={"content-type": "application/json"})
        # Cut short, under the limit: read whole, then refused for what it is.
        fits = http.post("/score", content=in_pieces(body[:200], 64), headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert answer.json() == {"error": f"body: more than the limit of {len(body) - 1} bytes"}
    assert fits.status_code == 400 and "malformed JSON" in fits.json()["error"]


def test_a_failure_while_scoring_is_a_json_500_without_a_traceback(served: ServedModel) -> None:
    def broken(matrix: np.ndarray) -> np.ndarray:
        raise RuntimeError("the model's library failed")

    failing = ServedModel(served.name, served.version, broken)
    tensor = {"inputs": [{"name": "features", "shape": [1, 10], "datatype": "FP64", "data": ROW}]}
    with client(failing) as http:
        answers = [http.post("/score", json={"data": [ROW]}), http.post(INFER, json=tensor)]
    for answer in answers:
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {
            "error": "internal error while scoring; the request id is in the X-Ms-Request-Id header"
        }
        assert "Traceback" not in answer.text and "the model's library failed" not in answer.text


def test_during_a_rotation_both_keys_score_and_any_other_is_refused(served: ServedModel) -> None:
    body = orjson.dumps({"data": [ROW]})
    with client(served, ServiceConfig(key="new-key", previous_key="old-key")) as http:
        answers = {
            sent: http.post("/score", content=body, headers={"content-type": "application/json", **auth})
            for sent, auth in (
                ("new", {"authorization": "Bearer new-key"}),
                ("old", {"authorization": "Bearer old-key"}),
                ("other", {"authorization": "Bearer older-key"}),
                ("none", {}),
            )
        }
    assert answers["new"].status_code == answers["old"].status_code == 200
    assert answers["other"].status_code == answers["none"].status_code == 401
    assert answers["other"].json() == {"error": "missing or invalid key: send Authorization: Bearer <key>"}


KEYED = ("/metrics", "/openapi.json")


def test_with_a_key_set_only_the_probes_answer_without_it(served: ServedModel) -> None:
    with client(served, ServiceConfig(key="the-key")) as http:
        anonymous = {path: http.get(path).status_code for path in ("/health", "/ready", "/metrics", "/openapi.json")}
        keyed = {path: http.get(path, headers={"authorization": "Bearer the-key"}) for path in KEYED}
    assert anonymous == {"/health": 200, "/ready": 200, "/metrics": 401, "/openapi.json": 401}
    assert keyed["/metrics"].status_code == keyed["/openapi.json"].status_code == 200
    assert "scoring_requests_total" in keyed["/metrics"].text
    assert keyed["/openapi.json"].json()["paths"]["/metrics"]["get"]["security"] == [{"key": []}]


def test_a_previous_key_without_a_current_one_is_refused() -> None:
    with pytest.raises(ValueError, match="previous key"):
        ServiceConfig(previous_key="old-key")
