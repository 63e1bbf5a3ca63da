"""Request parsing in process: the three JSON forms give the same matrix, and every bad body is an InputError."""

from __future__ import annotations

import json
import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diabetes_mlops.data import FEATURES
from diabetes_mlops.serving.parsing import InputError, flat_matrix, parse_body, parse_payload
from tests.serving.test_http_input import BAD_BODIES, bodies

ROW = [59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
matrices = st.lists(st.lists(finite, min_size=10, max_size=10), min_size=1, max_size=8)


def error(payload: object, max_rows: int = 100) -> InputError:
    with pytest.raises(InputError) as caught:
        parse_payload(payload, max_rows)
    return caught.value


@settings(max_examples=100, deadline=None)
@given(rows=matrices, order=st.permutations(FEATURES))
def test_the_three_forms_give_the_matrix_in_feature_order(rows: list[list[float]], order: list[str]) -> None:
    positions = [FEATURES.index(c) for c in order]
    forms = [
        {"data": rows},
        {"data": [dict(zip(FEATURES, r, strict=True)) for r in rows]},
        {"input_data": {"columns": order, "data": [[r[p] for p in positions] for r in rows]}},
        {"input_data": {"data": rows}},  # no columns: FEATURES order
    ]
    for form in forms:
        body = json.dumps(form).encode()
        np.testing.assert_array_equal(parse_body(body, len(rows)).matrix, np.array(rows), err_msg=str(form))


@settings(max_examples=100, deadline=None)
@given(body=bodies)
def test_any_body_is_a_finite_matrix_or_an_input_error(body: bytes) -> None:
    try:
        matrix = parse_body(body, 100).matrix
    except InputError as exc:
        assert exc.status in (400, 413) and exc.message
    else:
        assert matrix.dtype == np.float64 and matrix.shape[1:] == (10,) and np.isfinite(matrix).all()


@pytest.mark.parametrize(("body", "status", "message"), BAD_BODIES)
def test_each_bad_body_names_its_problem(body: str, status: int, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_body(body.encode(), 100)
    assert caught.value.status == status and message in caught.value.message == str(caught.value)


def test_the_classic_form_keeps_its_rows_text_for_the_log() -> None:
    body = b'{"data": [\r\n[1,2,3,4,5,6,7,8,9,1e1],\n[1.5,-2,3,4,5,6,7,8,9,10]]}'
    parsed = parse_body(body, 10)
    assert parsed.rows_json is not None and b"\r" not in parsed.rows_json and b"\n" not in parsed.rows_json
    assert json.loads(parsed.rows_json) == parsed.matrix.tolist()
    compact = parse_body(json.dumps({"data": [ROW]}, separators=(",", ":")).encode(), 10)
    assert compact.rows_json is not None and json.loads(compact.rows_json) == [ROW]
    # Anything but {"data": rows of numbers} is logged from the matrix.
    assert parse_body(json.dumps({"data": [dict(zip(FEATURES, ROW, strict=True))]}).encode(), 10).rows_json is None
    assert parse_body(json.dumps({"data": [ROW], "id": 1}).encode(), 10).rows_json is None
    assert parse_body(json.dumps({"input_data": {"data": [ROW]}}).encode(), 10).rows_json is None


# Numbers as JSON writes them and as it does not (the fast path must refuse what orjson refuses).
number_texts = st.one_of(
    finite.map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["-0", "-0.0", "1e308", "1e309", "-1e400", "1E-5", "2.5e+3", "01", "1.", ".5", "+1", "--1", "1e"]),
)
blanks = st.sampled_from(["", " ", "\n", "\r\n", "\t"])
row_texts = st.lists(number_texts, min_size=9, max_size=11).flatmap(
    lambda values: blanks.map(lambda blank: "[" + f",{blank}".join(values) + "]")
)
rows_texts = st.lists(row_texts, min_size=0, max_size=4).flatmap(
    lambda rows: blanks.map(lambda blank: "[" + f",{blank}".join(rows) + "]")
)
heads = st.sampled_from(['{"data":', ' { "data" : ', '{\n"data":\t', '{"data" :', '{"dat":', '{"data":[', '[{"data":'])
tails = st.sampled_from(["}", " }\n", "}}", "]}", "} x", ', "id": 1}'])


def reference(body: bytes, max_rows: int) -> object:
    """What orjson's path makes of a body: the matrix, or the error's status and message."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "malformed JSON"
    try:
        return parse_payload(payload, max_rows).tolist()
    except InputError as exc:
        return exc.status, exc.message


@settings(max_examples=300, deadline=None)
@given(head=heads, rows=rows_texts, tail=tails, max_rows=st.integers(1, 4))
def test_the_number_rows_path_agrees_with_orjsons_on_every_body(head: str, rows: str, tail: str, max_rows: int) -> None:
    """Bodies near ``{"data": rows of 10 numbers}``: row widths 9 to 11, numbers JSON refuses, blanks, other
    heads and tails. Whichever path parses it, the matrix or the error is the one orjson's path gives."""
    body = (head + rows + tail).encode()
    expected = reference(body, max_rows)
    try:
        parsed = parse_body(body, max_rows)
    except InputError as exc:
        got: object = "malformed JSON" if exc.message.startswith("body: malformed JSON") else (exc.status, exc.message)
    else:
        got = parsed.matrix.tolist()
        if parsed.rows_json is not None:
            assert orjson.loads(parsed.rows_json) == orjson.loads(body)["data"]
    assert got == expected


def test_a_body_of_number_rows_is_read_without_python_floats(monkeypatch: pytest.MonkeyPatch) -> None:
    """The usual body, ints and floats, blanks and line breaks included, never reaches orjson's decoder."""

    def refuse(_: bytes) -> None:
        raise AssertionError("orjson.loads was called")

    monkeypatch.setattr(orjson, "loads", refuse)
    body = b'{ "data" : [[1, 2.5, -0.0, 4e2, 5, 6, 7, 8, 9, 10],\r\n [11,12,13,14,15,16,17,18,19,2E-1]] }\n'
    parsed = parse_body(body, 2)
    assert parsed.matrix.tolist() == [[1, 2.5, 0, 400, 5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16, 17, 18, 19, 0.2]]
    assert parsed.rows_json == b" [[1, 2.5, -0.0, 4e2, 5, 6, 7, 8, 9, 10], [11,12,13,14,15,16,17,18,19,2E-1]] "


def test_the_row_limit_is_inclusive_and_beyond_it_is_413() -> None:
    for payload in ({"data": [ROW] * 3}, {"input_data": {"data": [ROW] * 3}}):
        assert parse_payload(payload, 3).shape == (3, 10)
        assert error(payload, 2).status == 413


def test_values_the_json_decoder_lets_through_are_refused_with_their_place() -> None:
    huge = 10**400  # a Python int too large for a float, as a caller of parse_payload may pass
    record = dict(zip(FEATURES, ROW, strict=True))
    assert "row 0, column 'age': expected a finite number" in error({"data": [{**record, "age": huge}]}).message
    infinite = {"data": [ROW, [*ROW[:9], math.inf]]}
    assert "row 1, column 's6': expected a finite number, got inf" in error(infinite).message
    reversed_columns = list(reversed(FEATURES))
    v2 = {"input_data": {"columns": reversed_columns, "data": [ROW, [math.nan, *ROW[1:]]]}}
    assert "row 1, column 's6': expected a finite number" in error(v2).message
    assert "row 0: expected a list of 10 numbers, got a string" in error({"data": ["x", ROW]}).message
    assert "row 1: expected an object with the columns" in error({"data": [record, ROW]}).message
    assert "column 'sex': expected a number, got a boolean" in error({"data": [{**record, "sex": True}]}).message
    assert "column 'sex': expected a finite number, got inf" in error({"data": [{**record, "sex": math.inf}]}).message
    mixed = [1, True, *ROW[2:]]  # ints, floats and a boolean, which numpy would take for 1.0
    assert "row 0, column 'sex': expected a number, got a boolean" in error({"data": [mixed]}).message
    assert "got int" in error({"data": 5}).message
    assert error({"input_data": {"data": []}}).message == "input_data.data: the list of rows is empty"
    twice = {"input_data": {"columns": [*FEATURES, "age"], "data": [ROW]}}
    assert error(twice).message == "input_data.columns: a column is named twice"
    assert "got none" in error({}).message.lower()


def test_a_flat_tensor_is_checked_value_by_value() -> None:
    np.testing.assert_array_equal(flat_matrix(ROW * 2, 2), np.array([ROW, ROW]))
    with pytest.raises(InputError, match="data: 19 values for 2 rows of 10"):
        flat_matrix([*ROW, *ROW[:9]], 2)
    with pytest.raises(InputError, match="row 1, column 'bmi': expected a number, got a string"):
        flat_matrix([*ROW, 1.0, 2.0, "x", *ROW[3:]], 2)
    with pytest.raises(InputError, match="too large for a float64"):
        flat_matrix([10**400, *ROW[1:]], 1)
    with pytest.raises(InputError, match="row 0, column 'sex': expected a finite number"):
        flat_matrix([1.0, math.inf, *ROW[2:]], 1)
