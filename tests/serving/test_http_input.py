"""The scoring service over real HTTP: bad input is a 4xx naming the problem, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.registry.local import LocalRegistry
from tests.serving.conftest import Server

ROW = [59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]
JSON_HEADERS = {"Content-Type": "application/json"}
COLUMNS = json.dumps(list(FEATURES))
REVERSED = json.dumps(list(reversed(FEATURES)))


def post(server: Server, body: bytes | str, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return httpx.post(f"{server.url}/score", content=content, headers=headers or JSON_HEADERS, timeout=10)


BAD_BODIES = [
    ("{not json", 400, "malformed JSON"),
    ('{"data": [[1,2,3,4,5,6,7,8,9]]}', 400, "row 0: expected 10 values, got 9"),
    ('{"data": [[1,2,3,4,5,6,7,8,9,10,11]]}', 400, "row 0: expected 10 values, got 11"),
    (
        '{"data": [[1,2,3,4,5,6,7,8,9,10],[1,2,"x",4,5,6,7,8,9,10]]}',
        400,
        "row 1, column 'bmi': expected a number, got a string",
    ),
    ('{"data": [[1,2,3,4,5,6,7,8,9,null]]}', 400, "row 0, column 's6': expected a number, got null"),
    ('{"data": [[1,2,3,4,5,6,7,8,9,NaN]]}', 400, "malformed JSON"),
    ('{"data": [[1,2,3,4,5,6,7,8,9,Infinity]]}', 400, "malformed JSON"),
    ('{"data": [[1,2,3,4,5,6,7,8,9,1e400]]}', 400, "malformed JSON"),
    ('{"data": [[true,2,3,4,5,6,7,8,9,10]]}', 400, "row 0, column 'age': expected a number, got a boolean"),
    ('{"data": []}', 400, "data: the list of rows is empty"),
    ('{"data": [[[1],2,3,4,5,6,7,8,9,0]]}', 400, "row 0, column 'age': expected a number, got a list"),
    ('{"data": [[1,2,3,4,5,6,7,8,9,' + "9" * 400 + "]]}", 400, "malformed JSON"),
    ('{"data": {}}', 400, "data: expected a list of rows, got an object"),
    ('{"rows": []}', 400, "expected a 'data' or 'input_data' key, got 'rows'"),
    ("[1, 2]", 400, "expected a JSON object"),
    ('{"data": [{"age": 1}]}', 400, "row 0: missing column 'sex'"),
    (
        '{"data": [{"age":1,"sex":1,"bmi":1,"bp":1,"s1":1,"s2":1,"s3":1,"s4":1,"s5":1,"s6":1,"s7":1}]}',
        400,
        "unknown column 's7'",
    ),
    ('{"input_data": {"columns": ["age"], "data": [[1]]}}', 400, "input_data.columns: missing column 'sex'"),
    ('{"input_data": {"columns": ["agee"], "data": [[1]]}}', 400, "input_data.columns: unknown column 'agee'"),
    ('{"input_data": [[1]]}', 400, "input_data: expected an object"),
    ('{"input_data": {"columns": ' + COLUMNS + "}}", 400, "input_data: expected an object with 'columns' and 'data'"),
    ('{"input_data": {"columns": "age", "data": [[1]]}}', 400, "input_data.columns: expected a list of column names"),
    ('{"input_data": {"columns": [1], "data": [[1]]}}', 400, "input_data.columns: expected a list of column names"),
    (
        '{"input_data": {"columns": ' + COLUMNS + ', "data": [[1,2,3,4,5,6,7,8,9,10],[1,2,"x",4,5,6,7,8,9,10]]}}',
        400,
        "row 1, column 'bmi': expected a number, got a string",
    ),
    # The column named is the one the client sent in that position, not the model's.
    (
        '{"input_data": {"columns": ' + REVERSED + ', "data": [[1,2,null,4,5,6,7,8,9,10]]}}',
        400,
        "row 0, column 's4': expected a number, got null",
    ),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_BODIES)
def test_bad_input_is_a_4xx_that_names_the_problem(server: Server, body: str, status: int, message: str) -> None:
    response = post(server, body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["error"]
    assert "Traceback" not in response.text


def test_wrong_content_type_is_415(server: Server) -> None:
    response = post(server, json.dumps({"data": [ROW]}), {"Content-Type": "text/csv"})
    assert response.status_code == 415
    assert "text/csv" in response.json()["error"]


def test_body_over_the_limit_is_413(start_server: Callable[..., Server]) -> None:
    server = start_server({"DIABETES_MLOPS_MAX_BODY_BYTES": "2048"})
    response = post(server, json.dumps({"data": [ROW] * 100}))
    assert response.status_code == 413
    assert "limit of 2048" in response.json()["error"]
    chunked = httpx.post(
        f"{server.url}/score", content=iter([b'{"data": [', b"1," * 2000, b"1]}"]), headers=JSON_HEADERS, timeout=10
    )
    assert chunked.status_code == 413


def test_more_rows_than_the_limit_is_413(start_server: Callable[..., Server]) -> None:
    server = start_server({"DIABETES_MLOPS_MAX_ROWS": "5"})
    response = post(server, json.dumps({"data": [ROW] * 6}))
    assert response.status_code == 413
    assert "6 rows is more than the limit of 5" in response.json()["error"]
    assert post(server, json.dumps({"data": [ROW] * 5})).status_code == 200


def test_unknown_route_and_method_are_json_errors(server: Server) -> None:
    missing = httpx.get(f"{server.url}/nowhere")
    assert missing.status_code == 404 and "/nowhere" in missing.json()["error"]
    wrong = httpx.get(f"{server.url}/score")
    assert wrong.status_code == 405 and "error" in wrong.json()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=12) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=30,
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"data": json_values}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"data": st.lists(st.lists(json_values, min_size=9, max_size=11), min_size=1, max_size=3)}
    ).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"input_data": st.fixed_dictionaries({"columns": st.lists(st.sampled_from(FEATURES)), "data": json_values})}
    ).map(lambda v: json.dumps(v).encode()),
    # v2 bodies near the valid ones: every feature once, in any order, with rows of any values; or columns
    # that are not a list of names; or no data at all.
    st.fixed_dictionaries(
        {
            "input_data": st.fixed_dictionaries(
                {"columns": st.permutations(FEATURES) | json_values},
                optional={"data": st.lists(st.lists(json_values, min_size=9, max_size=11), min_size=1, max_size=3)},
            )
        }
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_no_body_ever_gets_a_5xx(server: Server, body: bytes) -> None:
    response = post(server, body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["error"]
    else:
        predictions = response.json()["result"]
        assert all(isinstance(p, float) and np.isfinite(p) for p in predictions)


rows = st.lists(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=10, max_size=10),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, order=st.permutations(FEATURES))
def test_three_input_forms_agree_with_model_predict(server: Server, rows: list[list[float]], order: list[str]) -> None:
    model = LocalRegistry(server.settings.registry_dir).load(server.settings.model_name, "latest")
    expected = model.predict(pd.DataFrame(rows, columns=list(FEATURES)))
    classic = post(server, json.dumps({"data": rows})).json()["result"]
    records = post(server, json.dumps({"data": [dict(zip(FEATURES, r, strict=True)) for r in rows]})).json()["result"]
    positions = [FEATURES.index(c) for c in order]
    v2_rows = [[r[p] for p in positions] for r in rows]
    v2 = post(server, json.dumps({"input_data": {"columns": list(order), "data": v2_rows}})).json()["result"]
    for answer in (classic, records, v2):
        np.testing.assert_allclose(answer, expected, rtol=1e-9, atol=1e-6)


def test_answer_carries_the_model_and_version_header(server: Server) -> None:
    rows = load_builtin().loc[:2, list(FEATURES)].to_numpy().tolist()
    response = post(server, json.dumps({"data": rows}))
    assert response.status_code == 200
    assert response.json()["model"] == {"name": "diabetes", "version": 1}
    assert response.headers["x-model-version"] == "1"
    assert len(response.json()["result"]) == 3
