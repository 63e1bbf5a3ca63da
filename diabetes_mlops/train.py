"""Training: a scikit-learn Pipeline ending in Ridge, fitted with fixed seeds, and what it learnt."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from diabetes_mlops.data import FEATURES, TARGET, fingerprint, split

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from diabetes_mlops.config import Settings

TRACKED_LIBRARIES = ("scikit-learn", "numpy", "pandas", "scipy", "skops")


@dataclass
class TrainResult:
    """What a training produced, besides the model: enough to reproduce and to compare it."""

    model_name: str
    params: dict[str, object]
    metrics: dict[str, float]
    data_fingerprint: str
    n_train: int
    n_test: int
    git_commit: str | None
    library_versions: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TrainResult:
        return cls(**data)  # type: ignore[arg-type]


def make_pipeline(alpha: float) -> Pipeline:
    """The model: standardised features into a Ridge regression."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=alpha))])


def git_commit() -> str | None:
    """The commit being built: Jenkins' GIT_COMMIT when set, else ``git rev-parse HEAD``, else None."""
    if commit := os.environ.get("GIT_COMMIT"):
        return commit
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def regression_metrics(y_true: object, y_pred: object) -> dict[str, float]:
    """MSE, RMSE, MAE and R2 of predictions against the truth."""
    import math

    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    mse = float(mean_squared_error(y_true, y_pred))
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


def _fit(train: pd.DataFrame, settings: Settings) -> tuple[Pipeline, dict[str, object]]:
    """Fit the pipeline; with ``cv_alphas`` set, pick alpha by a seeded 5-fold grid search first."""
    x, y = train.loc[:, list(FEATURES)], train[TARGET]
    if not settings.cv_alphas:
        return make_pipeline(settings.alpha).fit(x, y), {"alpha": settings.alpha}
    from sklearn.model_selection import GridSearchCV, KFold

    search = GridSearchCV(
        make_pipeline(settings.alpha),
        {"ridge__alpha": list(settings.cv_alphas)},
        cv=KFold(n_splits=5, shuffle=True, random_state=settings.seed),
        scoring="neg_mean_squared_error",
    ).fit(x, y)
    alpha = float(search.best_params_["ridge__alpha"])
    return search.best_estimator_, {"alpha": alpha, "cv_alphas": list(settings.cv_alphas)}


def train(frame: pd.DataFrame, settings: Settings) -> tuple[Pipeline, TrainResult]:
    """Split ``frame`` with the configured seed, fit on the train part, measure on the test part."""
    train_part, test_part = split(frame, settings.test_size, settings.seed)
    return train_on_split(train_part, test_part, settings, fingerprint(frame))


def train_on_split(
    train_part: pd.DataFrame, test_part: pd.DataFrame, settings: Settings, data_fingerprint: str
) -> tuple[Pipeline, TrainResult]:
    """Fit on ``train_part`` and measure on ``test_part``, a split of the data ``data_fingerprint`` names."""
    started = time.perf_counter()
    model, params = _fit(train_part, settings)
    fitted = time.perf_counter()
    metrics = regression_metrics(test_part[TARGET], model.predict(test_part.loc[:, list(FEATURES)]))
    result = TrainResult(
        model_name=settings.model_name,
        params={**params, "test_size": settings.test_size, "seed": settings.seed},
        metrics=metrics,
        data_fingerprint=data_fingerprint,
        n_train=len(train_part),
        n_test=len(test_part),
        git_commit=git_commit(),
        library_versions=library_versions(),
        timings={"fit_seconds": fitted - started, "total_seconds": time.perf_counter() - started},
    )
    return model, result
