"""Verbs of the retrain loop: validate-data, train, evaluate, register, retrain, run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from diabetes_mlops.cli.base import (
    EXIT_CHAMPION_KEPT,
    Context,
    main,
    pass_context,
    reported,
    run_dir_option,
)
from diabetes_mlops.runs import RunDir

if TYPE_CHECKING:
    from diabetes_mlops.monitoring.due import RetrainDue
    from diabetes_mlops.pipelines import RetrainOutcome


@main.command("validate-data")
@click.argument("path", type=click.Path(path_type=Path), required=False)
@click.option("--report", "report_path", type=click.Path(path_type=Path), help="JSON report file.")
@click.option("--features-only", is_flag=True, help="Validate scoring input (no target column).")
@pass_context
@reported
def validate_data(obj: Context, path: Path | None, report_path: Path | None, features_only: bool) -> int:
    """Check a CSV/Parquet table (default: the training data) against the schema; exit 1 when it fails."""
    from diabetes_mlops.datasets import current
    from diabetes_mlops.schema import validate_file, validate_frame

    if path is None:
        data = current(obj.settings)
        report = validate_frame(data.frame, source=data.source)
    else:
        report = validate_file(path, with_target=not features_only)
    report_path = report_path or obj.settings.home / "validation.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report.to_dict(), indent=2))
    if not report.ok:
        return obj.fail(report.to_dict(), f"{report.one_line()}; report: {report_path}", report.summary())
    obj.emit(report.to_dict(), f"{report.summary()}\nreport: {report_path}")
    return 0


@main.command()
@click.option("--data", "source", type=click.Path(path_type=Path), help="CSV/Parquet training table.")
@click.option("--target", type=click.Choice(["local", "azure"]), default="local", show_default=True)
@click.option("--if-due", is_flag=True, help="Exit 3 at once, training nothing, unless a retrain is due.")
@run_dir_option
@pass_context
@reported
def train(obj: Context, source: Path | None, target: str, if_due: bool, run_dir: Path | None) -> int:
    """Validate the data and train a challenger into a run directory (on Azure: a command job)."""
    from diabetes_mlops.datasets import current
    from diabetes_mlops.pipelines import train_step, validate_step

    if if_due and not (due := _retrain_due(obj, source)).due:
        return _not_due(obj, due)
    if run_dir is None:
        run_dir = RunDir.create(obj.settings).path
    run_dir.mkdir(parents=True, exist_ok=True)
    if target == "azure":
        from diabetes_mlops.azure.targets import train as train_remote

        remote = train_remote(obj.settings, run_dir, str(source) if source else None)
        obj.emit(remote.to_dict(), f"trained on Azure ML; outputs in {run_dir}")
        return 0
    data = current(obj.settings, source)
    validate_step(obj.settings, data.frame, run_dir, data.source)
    result = train_step(obj.settings, data.frame, run_dir)
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items())
    obj.emit({"run_dir": str(run_dir), **result.to_dict()}, f"trained challenger: {metrics}\nrun: {run_dir}")
    return 0


def _retrain_due(obj: Context, source: Path | None) -> RetrainDue:
    from diabetes_mlops.monitoring.due import retrain_due

    return retrain_due(obj.settings, obj.registry(), source)


def _not_due(obj: Context, due: RetrainDue) -> int:
    """Say why no retrain is due; exit code 3, as for a kept champion."""
    obj.emit({"due": due.to_dict(), "retrained": False}, f"retrain not due: {'; '.join(due.reasons)}")
    return EXIT_CHAMPION_KEPT


def _resolve_run_dir(obj: Context, run_dir: Path | None) -> Path:

    return run_dir if run_dir is not None else RunDir.latest_trained(obj.settings).path


@main.command()
@run_dir_option
@pass_context
@reported
def evaluate(obj: Context, run_dir: Path | None) -> int:
    """Compare the run's challenger with the champion; exit 3 when the champion stays."""
    from diabetes_mlops.pipelines import evaluate_step

    run_dir = _resolve_run_dir(obj, run_dir)
    evaluation = evaluate_step(obj.settings, obj.registry(), run_dir)
    verdict = "promote the challenger" if evaluation.decision.promote else "keep the champion"
    obj.emit(
        {"run_dir": str(run_dir), **evaluation.to_dict()},
        f"{verdict}: {evaluation.decision.reason}\nreport: {RunDir(run_dir).model_card}",
    )
    return 0 if evaluation.decision.promote else EXIT_CHAMPION_KEPT


@main.command()
@run_dir_option
@pass_context
@reported
def register(obj: Context, run_dir: Path | None) -> int:
    """Register the run's challenger as the new champion if it won; exit 3 when it did not."""
    from diabetes_mlops.pipelines import register_step

    run_dir = _resolve_run_dir(obj, run_dir)
    entry = register_step(obj.settings, obj.registry(), run_dir)
    if entry is None:
        obj.emit({"run_dir": str(run_dir), "registered": None}, "champion kept: nothing registered")
        return EXIT_CHAMPION_KEPT
    obj.emit(entry.to_dict(), f"registered {entry.name} version {entry.version} as champion")
    return 0


def _retrain_text(outcome: RetrainOutcome) -> str:
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in outcome.evaluation.challenger.items())
    if outcome.registered is None:
        head = f"champion kept (version {outcome.evaluation.champion_version}): {outcome.evaluation.decision.reason}"
    else:
        head = f"registered {outcome.registered.name} version {outcome.registered.version} as champion"
    return f"{head}\nchallenger metrics: {metrics}\nreport: {outcome.model_card.path}"


@main.command()
@click.option("--data", "source", type=click.Path(path_type=Path), help="CSV/Parquet training table.")
@click.option(
    "--if-due",
    is_flag=True,
    help="Only when the data differs from the champion's or the last drift report alarmed; else exit 3 at once.",
)
@pass_context
@reported
def retrain(obj: Context, source: Path | None, if_due: bool) -> int:
    """validate -> train -> evaluate -> register if better; exit 3 when the champion stays."""
    from diabetes_mlops.pipelines import retrain as retrain_pipeline

    due = _retrain_due(obj, source) if if_due else None
    if due is not None and not due.due:
        return _not_due(obj, due)
    outcome = retrain_pipeline(obj.settings, source)
    text = _retrain_text(outcome)
    if due is not None:
        text = f"retrain due: {'; '.join(due.reasons)}\n{text}"
    obj.emit({**outcome.to_dict(), **({"due": due.to_dict()} if due else {})}, text)
    return EXIT_CHAMPION_KEPT if outcome.kept_champion else 0


@main.command()
@pass_context
@reported
def run(obj: Context) -> None:
    """The whole local loop: retrain, then release the champion to a local production service."""
    from diabetes_mlops.deploy.local import undeploy
    from diabetes_mlops.deploy.release import release
    from diabetes_mlops.pipelines import retrain as retrain_pipeline

    outcome = retrain_pipeline(obj.settings)
    released = release(obj.settings, "champion", outcome.run_dir, target="local")
    if released.released:
        undeploy(obj.settings, "qa")
    url = obj.settings.production_url
    home = f" --home {obj.settings.home}" if obj.settings.home != Path(".mlops") else ""
    text = "\n".join(
        [
            _retrain_text(outcome),
            f"production serves {released.name}:{released.version} at {url}"
            + ("" if released.released else " (already, nothing to release)"),
            "try it:",
            f"  curl -s -X POST {url}/score -H 'Content-Type: application/json' "
            "-d '{\"data\": [[59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]]}'",
            f"stop it: diabetes-mlops{home} undeploy production",
        ]
    )
    obj.emit({**outcome.to_dict(), "release": released.to_dict(), "url": url}, text)
