"""The ``diabetes-mlops`` group, the context every verb gets, and the error-to-exit-code wrapper."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from diabetes_mlops import __version__, progress
from diabetes_mlops.config import Settings, load_settings
from diabetes_mlops.errors import MlopsError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CHAMPION_KEPT = 3
EXIT_DRIFT = 4


class Context:
    """What every verb gets: the settings and whether to print JSON."""

    def __init__(self, settings: Settings, as_json: bool) -> None:
        self.settings = settings
        self.as_json = as_json

    def emit(self, data: dict[str, Any], text: str) -> None:
        """Print ``data`` as JSON with --json, else ``text`` for a person."""
        click.echo(json.dumps(data, indent=2, default=str) if self.as_json else text)

    def fail(self, data: dict[str, Any], line: str, details: str = "") -> int:
        """Print ``data`` (--json) or ``details`` on stdout and ``line`` as the one error line; return exit 1."""
        if self.as_json or details:
            self.emit(data, details)
        click.echo(f"error: {line}", err=True)
        return EXIT_FAILURE

    def registry(self):
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
            # Exit 1 is one line on stderr, whatever the message was built from.
            click.echo(f"error: {'; '.join(line.strip() for line in str(exc).splitlines() if line.strip())}", err=True)
            sys.exit(EXIT_FAILURE)
        sys.exit(code or 0)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="diabetes-mlops", message="%(prog)s %(version)s")
@click.option("--home", type=click.Path(path_type=Path), help="Home directory [env DIABETES_MLOPS_HOME; ./.mlops].")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Settings file [mlops.toml].")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def main(ctx: click.Context, home: Path | None, config_file: Path | None, as_json: bool) -> None:
    """Build, retrain, release and monitor the diabetes model."""
    try:
        settings = load_settings(config_file, home=home)
    except MlopsError as exc:
        # A settings error is not a misuse of the command line: one line, no usage banner, exit 2.
        click.echo(f"error: {exc}", err=True)
        ctx.exit(EXIT_USAGE)
    progress.configure(not as_json)
    ctx.obj = Context(settings, as_json)


def run_dir_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--run-dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="DIABETES_MLOPS_RUN_DIR",
        help="Run directory [env DIABETES_MLOPS_RUN_DIR; train: a new one; others: the latest].",
    )(func)
