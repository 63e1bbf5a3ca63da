"""The ``score-batch`` verb: score a CSV or Parquet file of any size with a registered model."""

from __future__ import annotations

from pathlib import Path

import click

from diabetes_mlops.cli.base import Context, main, pass_context, reported


@main.command("score-batch")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", "model_ref", default="champion", show_default=True, help="NAME:VERSION, alias or VERSION.")
@click.option("--model-dir", type=click.Path(path_type=Path, file_okay=False), help="A model directory instead.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=1 << 18, show_default=True, help="Rows per chunk.")
@click.option("--workers", type=click.IntRange(min=1), help="Threads [all cores].")
@click.option("--target", type=click.Choice(["local", "azure"]), default="local", show_default=True)
@pass_context
@reported
def score_batch(
    obj: Context,
    input_path: str,
    output_path: Path,
    model_ref: str,
    model_dir: Path | None,
    chunk_rows: int,
    workers: int | None,
    target: str,
) -> None:
    """Score INPUT (CSV/Parquet) into OUTPUT (Parquet, or CSV by suffix): row_id, prediction, model_version.

    Rows that fail the schema's per-value checks go to OUTPUT.rejects.csv with their reasons. A run that
    was stopped is resumed by running the same command again. With --target azure the same runs as an
    Azure ML command job on the cluster (INPUT may then be an Azure ML data reference) and its files are
    downloaded to OUTPUT.
    """
    from concurrent.futures import ThreadPoolExecutor

    from diabetes_mlops.batch import score_batch as run
    from diabetes_mlops.registry import parse_model_ref
    from diabetes_mlops.serving.model import ServedModel

    if model_dir is None:
        name, ref = parse_model_ref(model_ref, obj.settings.model_name)
        model_dir = obj.registry().version_dir(name, ref)
    if target == "azure":
        from diabetes_mlops.azure.targets import score_batch as run_remote

        remote = run_remote(obj.settings, input_path, output_path, model_dir, chunk_rows, workers)
        obj.emit(remote.to_dict(), remote.summary())
        return
    with ThreadPoolExecutor(1) as loader:
        # A version registered before affine.json loads in a child process (scikit-learn: a second or more).
        served = loader.submit(ServedModel.from_dir, model_dir)
        result = run(Path(input_path), output_path, served, chunk_rows=chunk_rows, workers=workers)
    obj.emit(result.to_dict(), result.summary())
