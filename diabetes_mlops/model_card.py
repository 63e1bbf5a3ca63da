"""What a person reads after a retrain: the model card and the evaluation plots, in the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.data import FEATURES, TARGET
from diabetes_mlops.runs import PLOTS, RunDir

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from diabetes_mlops.evaluate import Evaluation
    from diabetes_mlops.train import TrainResult


def write_plots(run_dir: Path, challenger: Pipeline, champion: Pipeline | None, test: pd.DataFrame) -> list[Path]:
    """Predicted vs actual, residuals, and both models' predictions side by side, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = test.loc[:, list(FEATURES)], test[TARGET].to_numpy()
    predicted = challenger.predict(x)
    lo, hi = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
    paths = RunDir(run_dir).plots

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y, predicted, s=12, alpha=0.7)
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="actual target", ylabel="predicted target", title="Challenger: predicted vs actual")
    fig.savefig(paths[0], dpi=80, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(predicted, y - predicted, s=12, alpha=0.7)
    ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="predicted target", ylabel="residual (actual - predicted)", title="Challenger residuals")
    fig.savefig(paths[1], dpi=80, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 5))
    if champion is not None:
        ax.scatter(champion.predict(x), predicted, s=12, alpha=0.7)
        ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1)
        ax.set(xlabel="champion prediction", ylabel="challenger prediction")
    else:
        ax.text(0.5, 0.5, "no champion yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Champion vs challenger on the test split")
    fig.savefig(paths[2], dpi=80, bbox_inches="tight")
    plt.close(fig)
    return paths


def _metrics_table(evaluation: Evaluation) -> str:
    rows = ["| metric | challenger | champion |", "| --- | --- | --- |"]
    for key in ("mse", "rmse", "mae", "r2"):
        champion = f"{evaluation.champion[key]:.4f}" if evaluation.champion else "none"
        rows.append(f"| {key.upper()} | {evaluation.challenger[key]:.4f} | {champion} |")
    return "\n".join(rows)


def write_model_card(run_dir: Path, result: TrainResult, evaluation: Evaluation) -> Path:
    """A markdown model card: what was trained, on what, how it scored, and what the gate decided."""
    champion = f"version {evaluation.champion_version}" if evaluation.champion_version else "none"
    verdict = "promote" if evaluation.decision.promote else "keep the champion"
    params = ", ".join(f"{k}={v}" for k, v in result.params.items())
    versions = ", ".join(f"{k} {v}" for k, v in result.library_versions.items())
    text = f"""# Model card: {result.model_name}

A scikit-learn pipeline (standard scaling, then Ridge regression) that predicts a quantitative
measure of diabetes progression one year after baseline from ten baseline variables
({", ".join(FEATURES)}).

## Training
- Parameters: {params}
- Data fingerprint: `{result.data_fingerprint}`
- Rows: {result.n_train} for training, {result.n_test} for testing
- Git commit: {result.git_commit or "unknown"}
- Libraries: {versions}

## Evaluation on the test split
{_metrics_table(evaluation)}

Champion compared: {champion}.
Decision: **{verdict}**: {evaluation.decision.reason}.

## Plots
{chr(10).join(f"![{name}]({name})" for name in PLOTS)}

## Intended use and limits
For demonstrating an MLOps loop. Trained on 442 patients of one study; not for clinical decisions.
"""
    path = RunDir(run_dir).model_card
    path.write_text(text)
    return path
