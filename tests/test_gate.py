"""The champion/challenger gate, property by property."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from diabetes_mlops.evaluate import gate

mse = st.floats(0.0, 1e6, allow_nan=False)
r2 = st.floats(-5.0, 1.0, allow_nan=False)
floor = st.floats(-1.0, 1.0, allow_nan=False)
margin = st.floats(0.0, 0.99, allow_nan=False)


def metrics(mse_value: float, r2_value: float) -> dict[str, float]:
    return {"mse": mse_value, "rmse": mse_value**0.5, "mae": mse_value**0.5, "r2": r2_value}


@given(mse, r2, mse, r2, floor, margin)
def test_never_promotes_a_worse_challenger(
    challenger_mse: float, challenger_r2: float, champion_mse: float, champion_r2: float, r2_floor: float, m: float
) -> None:
    decision = gate(
        metrics(challenger_mse, challenger_r2), metrics(champion_mse, champion_r2), r2_floor=r2_floor, min_improvement=m
    )
    if challenger_mse >= champion_mse:
        assert not decision.promote, decision.reason


@given(mse, r2, floor)
def test_without_champion_the_floor_alone_decides(challenger_mse: float, challenger_r2: float, r2_floor: float) -> None:
    decision = gate(metrics(challenger_mse, challenger_r2), None, r2_floor=r2_floor)
    assert decision.promote == (challenger_r2 >= r2_floor)


@given(mse.filter(lambda v: v > 0), st.floats(0.0, 0.5), r2)
def test_promotes_a_strictly_better_challenger_above_the_floor(
    champion_mse: float, gain: float, r2_value: float
) -> None:
    challenger_mse = champion_mse * (1 - gain) - 1e-9 * champion_mse - 1e-12
    decision = gate(metrics(challenger_mse, 0.5), metrics(champion_mse, r2_value), r2_floor=0.3, min_improvement=gain)
    assert decision.promote, decision.reason


@given(mse.filter(lambda v: v > 0), r2)
def test_below_floor_never_wins_even_when_better(champion_mse: float, champion_r2: float) -> None:
    decision = gate(metrics(champion_mse / 2, 0.1), metrics(champion_mse, champion_r2), r2_floor=0.3)
    assert not decision.promote
    assert "below the floor" in decision.reason


def test_equal_models_keep_the_champion() -> None:
    decision = gate(metrics(100.0, 0.5), metrics(100.0, 0.5))
    assert not decision.promote
    assert "does not beat" in decision.reason
