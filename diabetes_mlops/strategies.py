"""hypothesis strategies for frames inside and outside the schema (needs the ``testing`` extra)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

try:
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays
except ImportError as exc:
    raise ImportError(
        "diabetes_mlops.strategies needs hypothesis: pip install 'diabetes-mlops[testing]'", name=exc.name
    ) from exc

from diabetes_mlops.data import COLUMNS, FEATURES
from diabetes_mlops.schema import MIN_ROWS_FOR_DISTRIBUTION, ReferenceStats, reference_stats

# Below this many rows only the per-value checks apply, so every in-range frame is valid.
MAX_VALID_ROWS = MIN_ROWS_FOR_DISTRIBUTION - 1
INVALID_KINDS = ("null", "inf", "out_of_range", "text", "missing_column", "extra_column")


def _column_values(name: str, n: int, stats: ReferenceStats) -> st.SearchStrategy[np.ndarray]:
    lo, hi = stats.columns[name].bounds
    return arrays("float64", n, elements=st.floats(lo, hi, allow_nan=False, allow_infinity=False))


@st.composite
def valid_frames(draw: st.DrawFn, with_target: bool = True, max_rows: int = MAX_VALID_ROWS) -> pd.DataFrame:
    """Frames every check of the schema accepts: 1..max_rows rows of finite in-range values."""
    stats = reference_stats()
    n = draw(st.integers(1, max_rows))
    names = COLUMNS if with_target else FEATURES
    return pd.DataFrame({name: draw(_column_values(name, n, stats)) for name in names})


@dataclass(frozen=True)
class InvalidFrame:
    """A frame broken in one known way: which kind, in which column (and row, for a value)."""

    frame: pd.DataFrame
    kind: str
    column: str
    row: int | None


@st.composite
def invalid_frames(draw: st.DrawFn, with_target: bool = True) -> InvalidFrame:
    """A valid frame with one defect of a drawn kind in a drawn column."""
    frame = draw(valid_frames(with_target=with_target))
    kind = draw(st.sampled_from(INVALID_KINDS))
    names = list(frame.columns)
    column = draw(st.sampled_from(names))
    row = draw(st.integers(0, len(frame) - 1))
    if kind == "missing_column":
        return InvalidFrame(frame.drop(columns=[column]), kind, column, None)
    if kind == "extra_column":
        extra = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(lambda s: s not in names))
        return InvalidFrame(frame.assign(**{extra: 0.0}), kind, extra, None)
    broken = frame.astype({column: "object"}) if kind == "text" else frame.copy()
    lo, hi = reference_stats().columns[column].bounds
    values: dict[str, float | str] = {
        "null": np.nan,
        "inf": draw(st.sampled_from([np.inf, -np.inf])),
        "out_of_range": draw(
            st.one_of(
                st.floats(hi, hi * 10 + 10, exclude_min=True, allow_nan=False, allow_infinity=False),
                st.floats(lo - abs(lo) * 10 - 10, lo, exclude_max=True, allow_nan=False, allow_infinity=False),
            )
        ),
        "text": draw(st.text("abcxyz ", min_size=1, max_size=8)),
    }
    broken.loc[row, column] = values[kind]
    return InvalidFrame(broken, kind, column, row)
