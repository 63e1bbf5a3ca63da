"""pandera schemas of the diabetes table, with ranges and distribution checks learnt from reference data."""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.data import COLUMNS, FEATURES, read_table
from diabetes_mlops.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

RANGE_MARGIN = 0.25
MIN_ROWS_FOR_DISTRIBUTION = 50
MEAN_TOLERANCE_STDS = 0.5
STD_RATIO_BOUNDS = (0.5, 2.0)
MISSING_COLUMN = "column_in_dataframe"
# Failures about the file as a whole, whose value is the message that says it.
FILE_CHECKS = ("readable_table", "known_columns")


@dataclass(frozen=True)
class ColumnStats:
    """Reference statistics of one column, and the range a value may take."""

    mean: float
    std: float
    min: float
    max: float

    @property
    def bounds(self) -> tuple[float, float]:
        """The observed range widened by RANGE_MARGIN of its span on each side."""
        margin = RANGE_MARGIN * (self.max - self.min)
        return round(self.min - margin, 6), round(self.max + margin, 6)


@dataclass(frozen=True)
class ReferenceStats:
    """Per-column statistics of the data a schema is learnt from."""

    columns: dict[str, ColumnStats]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ReferenceStats:
        return cls(
            {
                c: ColumnStats(
                    float(frame[c].mean()), float(frame[c].std()), float(frame[c].min()), float(frame[c].max())
                )
                for c in COLUMNS
                if c in frame
            }
        )

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {c: asdict(s) for c, s in self.columns.items()}

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, float]]) -> ReferenceStats:
        return cls({c: ColumnStats(**s) for c, s in data.items()})


# ReferenceStats.from_frame(load_builtin()) written out (tests/test_schema.py computes it again): learning the
# ranges would otherwise import scikit-learn, a second of start-up for score-batch, validate-data and ingest.
BUILTIN_STATS = {
    "age": (48.51809954751131, 13.109027822041092, 19.0, 79.0),
    "sex": (1.4683257918552035, 0.4995611704353544, 1.0, 2.0),
    "bmi": (26.37579185520362, 4.4181215606157735, 18.0, 42.2),
    "bp": (94.64701357466062, 13.831283419782999, 62.0, 133.0),
    "s1": (189.14027149321268, 34.60805167504306, 97.0, 301.0),
    "s2": (115.43914027149322, 30.413080969276546, 41.6, 242.4),
    "s3": (49.78846153846154, 12.934202154863327, 22.0, 99.0),
    "s4": (4.070248868778281, 1.2904498966082774, 2.0, 9.09),
    "s5": (4.641410859728507, 0.5223905610694907, 3.2581, 6.107),
    "s6": (91.26018099547511, 11.496334739334172, 58.0, 124.0),
    "target": (152.13348416289594, 77.09300453299109, 25.0, 346.0),
}


@functools.cache
def reference_stats() -> ReferenceStats:
    """Statistics of the built-in diabetes data, the default reference."""
    return ReferenceStats({name: ColumnStats(*stats) for name, stats in BUILTIN_STATS.items()})


def _column(name: str, stats: ColumnStats) -> pa.Column:
    import numpy as np
    import pandera.pandas as pa

    lo, hi = stats.bounds
    low_std, high_std = STD_RATIO_BOUNDS

    # The distribution checks look at the finite values only: an infinity fails its own row's "finite" check,
    # and would otherwise fail these too (and make numpy warn while computing them).
    def mean_near_reference(s: pd.Series) -> bool:
        s = s[np.isfinite(s)]
        return len(s) < MIN_ROWS_FOR_DISTRIBUTION or abs(s.mean() - stats.mean) <= MEAN_TOLERANCE_STDS * stats.std

    def std_near_reference(s: pd.Series) -> bool:
        s = s[np.isfinite(s)]
        return len(s) < MIN_ROWS_FOR_DISTRIBUTION or low_std * stats.std <= s.std() <= high_std * stats.std

    return pa.Column(
        "float64",
        checks=[
            pa.Check(lambda s: np.isfinite(s), name="finite"),
            pa.Check.in_range(lo, hi),
            pa.Check(mean_near_reference, name="mean_near_reference"),
            pa.Check(std_near_reference, name="std_near_reference"),
        ],
        nullable=False,
        coerce=True,
    )


def build_schema(stats: ReferenceStats | None = None, *, with_target: bool = True) -> pa.DataFrameSchema:
    """The schema of a training table (``with_target``) or of scoring input (features only)."""
    import pandera.pandas as pa

    stats = stats or reference_stats()
    names = COLUMNS if with_target else FEATURES
    return pa.DataFrameSchema(
        {name: _column(name, stats.columns[name]) for name in names},
        checks=[pa.Check(lambda df: len(df) > 0, name="not_empty")],
        strict=True,
        ordered=False,
        name="diabetes" if with_target else "diabetes_features",
    )


@dataclass(frozen=True)
class Failure:
    """One failed check: the row (None for a whole column or table), the column, the check, the value."""

    row: int | None
    column: str | None
    check: str
    value: object

    def describe(self) -> str:
        if self.check in FILE_CHECKS:
            return str(self.value)
        if self.check == MISSING_COLUMN:
            return f"no column {self.column} (check {MISSING_COLUMN})"
        where = f"row {self.row}" if self.row is not None else "table"
        column = f", column {self.column!r}" if self.column else ""
        value = "" if isinstance(self.value, bool) else f" (value {self.value!r})"
        return f"{where}{column}: check {self.check} failed{value}"


@dataclass
class ValidationReport:
    """The outcome of validating a table: ``ok`` and every failure found (all checks run)."""

    source: str
    n_rows: int
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "ok": self.ok,
            "n_rows": self.n_rows,
            "n_failures": len(self.failures),
            "failures": [asdict(f) for f in self.failures],
        }

    @property
    def missing_columns(self) -> list[str]:
        return [str(f.column) for f in self.failures if f.check == MISSING_COLUMN]

    def one_line(self) -> str:
        """What is wrong, in one line: the missing columns, or the first failed check and how many more."""
        if self.ok:
            return f"{self.source}: {self.n_rows} rows, all checks passed"
        if self.missing_columns:
            return f"{self.source}: no column {', '.join(self.missing_columns)}"
        first = self.failures[0]
        more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        if first.check in FILE_CHECKS:
            return f"{first.describe()}{more}"
        return f"{self.source}: {self.n_rows} rows, {first.describe()}{more}"

    def summary(self, limit: int = 20) -> str:
        """Human text: one line per failure, at most ``limit`` of them."""
        if self.ok:
            return f"{self.source}: {self.n_rows} rows, all checks passed"
        lines = [f"{self.source}: {self.n_rows} rows, {len(self.failures)} failed checks"]
        lines += ["  " + f.describe() for f in self.failures[:limit]]
        if len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit} more (see the JSON report)")
        return "\n".join(lines)


def _plain(value: object) -> object:
    """A JSON-friendly form of a failure case (numpy scalars to Python, NaN/inf as strings)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def validate_frame(
    frame: pd.DataFrame, stats: ReferenceStats | None = None, *, with_target: bool = True, source: str = "frame"
) -> ValidationReport:
    """Run every check of the schema on ``frame`` and report each failing row, column and check."""
    import pandera.pandas as pa

    schema = build_schema(stats, with_target=with_target)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        failures = [
            Failure(
                row=None if _missing(idx) else int(idx),
                column=_column_name(ctx, col, case),
                check=str(check),
                value=_plain(case),
            )
            for ctx, col, check, case, idx in zip(
                cases["schema_context"],
                cases["column"],
                cases["check"],
                cases["failure_case"],
                cases["index"],
                strict=True,
            )
        ]
        failures = _without_echoes(failures)
        failures.sort(key=lambda f: (f.row is not None, f.row or 0, f.column or ""))
        return ValidationReport(source, len(frame), failures)
    return ValidationReport(source, len(frame))


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _column_name(context: str, column: object, case: object) -> str | None:
    """The column a failure is about; for a table-level column check the column is the failure case."""
    if context == "DataFrameSchema":
        return case if isinstance(case, str) else None
    return column if isinstance(column, str) else None


def _without_echoes(failures: list[Failure]) -> list[Failure]:
    """Drop the whole-column failures that only repeat a failed type coercion of that column's rows."""
    uncoerced = {f.column for f in failures if f.check.startswith("coerce_dtype")}
    return [f for f in failures if not (f.row is None and f.column in uncoerced and f.check != "column_in_schema")]


def validate_file(path: Path, stats: ReferenceStats | None = None, *, with_target: bool = True) -> ValidationReport:
    """Read ``path`` and validate it; a file that cannot be read as a table is a report with one failure."""
    try:
        frame = read_table(path)
    except DataError as exc:
        return ValidationReport(str(path), 0, [Failure(None, None, "readable_table", str(exc))])
    if not set(map(str, frame.columns)) & set(COLUMNS):
        reason = f"{path}: not a diabetes table: none of the columns {', '.join(COLUMNS)} is in its header"
        return ValidationReport(str(path), len(frame), [Failure(None, None, "known_columns", reason)])
    return validate_frame(frame, stats, with_target=with_target, source=str(path))
