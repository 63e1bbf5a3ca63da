"""The ``diabetes-mlops`` command. Exit codes: 0 ok, 1 failure, 2 usage, 3 champion kept, 4 drift."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from diabetes_mlops.config import Settings, load_settings
from diabetes_mlops.errors import MlopsError

EXIT_FAILURE = 1
EXIT_CHAMPION_KEPT = 3


class Context:
    """What every verb gets: the settings and whether to print JSON."""

    def __init__(self, settings: Settings, as_json: bool) -> None:
        self.settings = settings
        self.as_json = as_json

    def emit(self, data: dict[str, Any], text: str) -> None:
        """Print ``data`` as JSON with --json, else ``text`` for a person."""
        click.echo(json.dumps(data, indent=2, default=str) if self.as_json else text)

    def registry(self):  # noqa: ANN201 - the Registry protocol is imported lazily
        from diabetes_mlops.registry import open_registry

        return open_registry(self.settings)


pass_context = click.make_pass_decorator(Context)


def reported(func: Callable[..., int | None]) -> Callable[..., None]:
    """Turn the kit's errors into one line on stderr and exit 1; a returned int is the exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = func(*args, **kwargs)
        except MlopsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILURE)
        sys.exit(code or 0)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(path_type=Path), help="Home directory [env DIABETES_MLOPS_HOME; ./.mlops].")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Settings file [mlops.toml].")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def main(ctx: click.Context, home: Path | None, config_file: Path | None, as_json: bool) -> None:
    """Build, retrain, release and monitor the diabetes model."""
    try:
        settings = load_settings(config_file, home=home)
    except MlopsError as exc:
        raise click.UsageError(str(exc)) from exc
    ctx.obj = Context(settings, as_json)


def _run_dir_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--run-dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="DIABETES_MLOPS_RUN_DIR",
        help="Run directory [env DIABETES_MLOPS_RUN_DIR; train: a new one; others: the latest].",
    )(func)


@main.command("validate-data")
@click.argument("path", type=click.Path(path_type=Path), required=False)
@click.option("--report", "report_path", type=click.Path(path_type=Path), help="JSON report file.")
@click.option("--features-only", is_flag=True, help="Validate scoring input (no target column).")
@pass_context
@reported
def validate_data(obj: Context, path: Path | None, report_path: Path | None, features_only: bool) -> int:
    """Check a CSV/Parquet table (default: the training data) against the schema; exit 1 when it fails."""
    from diabetes_mlops.pipelines import training_data
    from diabetes_mlops.schema import validate_file, validate_frame

    if path is None:
        report = validate_frame(training_data(obj.settings), source=str(obj.settings.data_path or "builtin"))
    else:
        report = validate_file(path, with_target=not features_only)
    report_path = report_path or obj.settings.home / "validation.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report.to_dict(), indent=2))
    obj.emit(report.to_dict(), f"{report.summary()}\nreport: {report_path}")
    return 0 if report.ok else EXIT_FAILURE


@main.command()
@click.option("--data", "source", type=click.Path(path_type=Path), help="CSV/Parquet training table.")
@_run_dir_option
@pass_context
@reported
def train(obj: Context, source: Path | None, run_dir: Path | None) -> None:
    """Validate the data and train a challenger into a run directory."""
    from diabetes_mlops.pipelines import new_run_dir, train_step, training_data, validate_step

    if run_dir is None:
        run_dir = new_run_dir(obj.settings)
    run_dir.mkdir(parents=True, exist_ok=True)
    frame = training_data(obj.settings, source)
    validate_step(obj.settings, frame, run_dir, str(source or obj.settings.data_path or "builtin"))
    result = train_step(obj.settings, frame, run_dir)
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items())
    obj.emit({"run_dir": str(run_dir), **result.to_dict()}, f"trained challenger: {metrics}\nrun: {run_dir}")


def _resolve_run_dir(obj: Context, run_dir: Path | None) -> Path:
    from diabetes_mlops.pipelines import latest_run_dir

    return run_dir if run_dir is not None else latest_run_dir(obj.settings)


@main.command()
@_run_dir_option
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
        f"{verdict}: {evaluation.decision.reason}\nreport: {run_dir / 'model_card.md'}",
    )
    return 0 if evaluation.decision.promote else EXIT_CHAMPION_KEPT


@main.command()
@_run_dir_option
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


def _retrain_text(outcome: Any) -> str:
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in outcome.evaluation.challenger.items())
    if outcome.kept_champion:
        head = f"champion kept (version {outcome.evaluation.champion_version}): {outcome.evaluation.decision.reason}"
    else:
        head = f"registered {outcome.registered.name} version {outcome.registered.version} as champion"
    return f"{head}\nchallenger metrics: {metrics}\nreport: {outcome.run_dir / 'model_card.md'}"


@main.command()
@click.option("--data", "source", type=click.Path(path_type=Path), help="CSV/Parquet training table.")
@pass_context
@reported
def retrain(obj: Context, source: Path | None) -> int:
    """validate -> train -> evaluate -> register if better; exit 3 when the champion stays."""
    from diabetes_mlops.pipelines import retrain as retrain_pipeline

    outcome = retrain_pipeline(obj.settings, source)
    obj.emit(outcome.to_dict(), _retrain_text(outcome))
    return EXIT_CHAMPION_KEPT if outcome.kept_champion else 0


@main.command()
@pass_context
@reported
def run(obj: Context) -> int:
    """The whole local loop: retrain, and register a better model as champion (exit 0 either way)."""
    from diabetes_mlops.pipelines import retrain as retrain_pipeline

    outcome = retrain_pipeline(obj.settings)
    obj.emit(outcome.to_dict(), _retrain_text(outcome))
    return 0


@main.group()
def models() -> None:
    """Registered model versions."""


@models.command("list")
@click.option("--name", help="Model name [settings: model_name].")
@pass_context
@reported
def models_list(obj: Context, name: str | None) -> None:
    """Every version of a model with its metrics and aliases."""
    name = name or obj.settings.model_name
    registry = obj.registry()
    versions = registry.list_versions(name)
    aliases = registry.aliases(name)
    by_version: dict[int, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    lines = [f"{'version':>7}  {'created':<29} {'r2':>7} {'mse':>10}  aliases"]
    for v in versions:
        tags = ",".join(sorted(by_version.get(v.version, [])))
        lines.append(f"{v.version:>7}  {v.created:<29} {v.metrics['r2']:>7.4f} {v.metrics['mse']:>10.2f}  {tags}")
    if not versions:
        lines = [f"model {name!r} has no registered version"]
    obj.emit({"name": name, "aliases": aliases, "versions": [v.to_dict() for v in versions]}, "\n".join(lines))


@models.command("show")
@click.argument("ref")
@pass_context
@reported
def models_show(obj: Context, ref: str) -> None:
    """One version's metadata: REF is NAME:VERSION, NAME:ALIAS, VERSION or ALIAS."""
    from diabetes_mlops.registry import parse_model_ref

    name, version_ref = parse_model_ref(ref, obj.settings.model_name)
    entry = obj.registry().get(name, version_ref)
    obj.emit(entry.to_dict(), json.dumps(entry.to_dict(), indent=2))


@main.command()
@click.argument("ref")
@click.option("--alias", default="champion", show_default=True, type=click.Choice(["champion", "production"]))
@pass_context
@reported
def promote(obj: Context, ref: str, alias: str) -> None:
    """Point an alias at a version: REF is NAME:VERSION or VERSION."""
    from diabetes_mlops.registry import parse_model_ref

    name, version_ref = parse_model_ref(ref, obj.settings.model_name)
    registry = obj.registry()
    entry = registry.get(name, version_ref)
    registry.set_alias(name, alias, entry.version)
    obj.emit({"name": name, "alias": alias, "version": entry.version}, f"{name}:{alias} -> version {entry.version}")


@main.command()
@click.option("--name", help="Model name [settings: model_name].")
@click.option("--alias", default="production", show_default=True, type=click.Choice(["champion", "production"]))
@pass_context
@reported
def rollback(obj: Context, name: str | None, alias: str) -> None:
    """Point an alias back at the version it held before."""
    name = name or obj.settings.model_name
    entry = obj.registry().rollback(name, alias)
    obj.emit({"name": name, "alias": alias, "version": entry.version}, f"{name}:{alias} -> version {entry.version}")
