"""Verbs that close the loop: drift (scoring logs against training data) and ingest (new labelled rows)."""

from __future__ import annotations

from pathlib import Path

import click

from diabetes_mlops import progress
from diabetes_mlops.cli.base import EXIT_DRIFT, Context, main, pass_context, reported


@main.command()
@click.option("--since", default="24h", show_default=True, help="Logs since a duration ago (30m, 24h, 7d) or a time.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Report directory.")
@pass_context
@reported
def drift(obj: Context, since: str, out_dir: Path | None) -> int:
    """Compare recent scoring logs with the champion's training data; exit 4 when something drifted."""
    from diabetes_mlops.monitoring.drift import STATUS_DRIFT, drift_report, parse_since
    from diabetes_mlops.monitoring.sinks import open_log_sink

    start = parse_since(since)
    with progress.task("drift report"):
        report = drift_report(obj.settings, open_log_sink(obj.settings), obj.registry(), since=start, out_dir=out_dir)
    obj.emit(report.to_dict(), f"{report.summary()}\nreport: {Path(str(report.out_dir)) / 'drift.md'}")
    return EXIT_DRIFT if report.status == STATUS_DRIFT else 0


@main.command()
@click.argument("path", type=click.Path(path_type=Path), required=False)
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(path_type=Path),
    help="CSV/Parquet of request_id, target (and optional row) to join with the logged scoring inputs.",
)
@pass_context
@reported
def ingest(obj: Context, path: Path | None, labels_path: Path | None) -> None:
    """Validate a batch of labelled rows; add the valid ones as a new dataset snapshot, quarantine the rest."""
    from diabetes_mlops.ingest import ingest_file, ingest_labels
    from diabetes_mlops.monitoring.sinks import open_log_sink

    if (path is None) == (labels_path is None):
        raise click.UsageError("give either a batch FILE or --labels FILE")
    with progress.task(f"ingest {labels_path or path}"):
        if labels_path is not None:
            result = ingest_labels(obj.settings, labels_path, open_log_sink(obj.settings))
        else:
            result = ingest_file(obj.settings, path)  # type: ignore[arg-type]
    obj.emit(result.to_dict(), result.summary())
