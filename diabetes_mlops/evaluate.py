"""Champion/challenger: both models on the same test split, and the gate that decides."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.config import DEFAULTS
from diabetes_mlops.data import FEATURES, TARGET
from diabetes_mlops.runs import RunDir
from diabetes_mlops.train import regression_metrics

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline


@dataclass(frozen=True)
class Decision:
    """The gate's verdict and the reason for it, in words."""

    promote: bool
    reason: str


def gate(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    r2_floor: float = DEFAULTS.r2_floor,
    min_improvement: float = DEFAULTS.min_improvement,
) -> Decision:
    """Promote only above the R2 floor and, with a champion, with MSE lower by more than ``min_improvement``."""
    if not challenger["r2"] >= r2_floor:
        return Decision(False, f"challenger R2 {challenger['r2']:.4f} is below the floor {r2_floor:.4f}")
    if champion is None:
        return Decision(True, f"no champion yet; challenger R2 {challenger['r2']:.4f} passes the floor")
    needed = champion["mse"] * (1.0 - min_improvement)
    if challenger["mse"] < needed:
        return Decision(True, f"challenger MSE {challenger['mse']:.4f} beats champion MSE {champion['mse']:.4f}")
    return Decision(
        False,
        f"challenger MSE {challenger['mse']:.4f} does not beat champion MSE {champion['mse']:.4f}"
        + (f" by {min_improvement:.1%}" if min_improvement else ""),
    )


@dataclass
class Evaluation:
    """Both models' metrics on one test split, the gate's decision, and the champion's version."""

    challenger: dict[str, float]
    champion: dict[str, float] | None
    champion_version: int | None
    decision: Decision
    n_test: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def __repr__(self) -> str:
        from diabetes_mlops.display import evaluation_repr

        return evaluation_repr(self)

    def _repr_html_(self) -> str:
        from diabetes_mlops.display import evaluation_html

        return evaluation_html(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Evaluation:
        return cls(**{**data, "decision": Decision(**data["decision"])})  # type: ignore[arg-type]

    def save(self, run_dir: Path) -> Path:
        path = RunDir(run_dir).evaluation
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def read(cls, run_dir: Path) -> Evaluation:
        return cls.from_dict(json.loads(RunDir(run_dir).evaluation.read_text()))


def evaluate(
    challenger: Pipeline,
    champion: Pipeline | None,
    test: pd.DataFrame,
    *,
    champion_version: int | None = None,
    r2_floor: float = DEFAULTS.r2_floor,
    min_improvement: float = DEFAULTS.min_improvement,
) -> Evaluation:
    """Score both models on ``test`` and apply the gate."""
    x, y = test.loc[:, list(FEATURES)], test[TARGET]
    challenger_metrics = regression_metrics(y, challenger.predict(x))
    champion_metrics = regression_metrics(y, champion.predict(x)) if champion is not None else None
    return Evaluation(
        challenger=challenger_metrics,
        champion=champion_metrics,
        champion_version=champion_version,
        decision=gate(challenger_metrics, champion_metrics, r2_floor, min_improvement),
        n_test=len(test),
    )
