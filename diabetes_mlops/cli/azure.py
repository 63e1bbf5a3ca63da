"""Verbs that exist only on Azure: compute, remote training, the retraining pipeline and its schedule, images.

``train``, ``release``, ``deploy``, ``undeploy`` and ``rollback`` take ``--target azure``; these are for the rest.
"""

from __future__ import annotations

from pathlib import Path

import click

from diabetes_mlops.cli.base import Context, main, pass_context, reported, run_dir_option


@main.group()
def azure() -> None:
    """Azure ML, ACR, ACI and AKS (needs the azure extra and the azure_* settings)."""


@azure.command()
@pass_context
@reported
def compute(obj: Context) -> None:
    """Create the training cluster if it is missing (0 nodes when idle)."""
    from diabetes_mlops.azure.targets import ensure_compute

    cluster = ensure_compute(obj.settings)
    data = {"name": cluster.name, "size": cluster.size, "min_instances": 0, "max_instances": cluster.max_instances}
    obj.emit(data, f"compute cluster {cluster.name}: {cluster.size}, 0..{cluster.max_instances} nodes")


@azure.command()
@click.option("--data", help="Training data: a local file, a datastore URI or azureml:<asset>@latest.")
@run_dir_option
@pass_context
@reported
def train(obj: Context, data: str | None, run_dir: Path | None) -> None:
    """Run `train` as an Azure ML command job and download its run directory."""
    from diabetes_mlops.azure.targets import train as train_remote
    from diabetes_mlops.runs import RunDir

    run_dir = run_dir or RunDir.create(obj.settings).path
    result = train_remote(obj.settings, run_dir, data)
    obj.emit(result.to_dict(), f"job {result.job_name} completed\nrun: {result.run_dir}")


@azure.command()
@click.option("--no-wait", is_flag=True, help="Return once submitted.")
@pass_context
@reported
def pipeline(obj: Context, no_wait: bool) -> None:
    """Run the retraining pipeline (train -> evaluate -> register) on Azure ML now."""
    from diabetes_mlops.azure.targets import run_retrain_pipeline

    out = run_retrain_pipeline(obj.settings, wait=not no_wait)
    obj.emit(out, f"pipeline {out['job_name']}: {out['status']}")


@azure.command()
@click.option("--delete", is_flag=True, help="Remove the schedule instead.")
@pass_context
@reported
def schedule(obj: Context, delete: bool) -> None:
    """Create or replace the retraining schedule (cron: azure_schedule_cron), or delete it."""
    from diabetes_mlops.azure.targets import schedule_retraining, unschedule_retraining

    if delete:
        removed = unschedule_retraining(obj.settings)
        name = obj.settings.azure.schedule_name
        obj.emit({"name": name, "deleted": removed}, f"schedule {name}: {'deleted' if removed else 'did not exist'}")
        return
    out = schedule_retraining(obj.settings)
    obj.emit(out, f"schedule {out['name']}: {out['cron']} ({out['time_zone']})")


@azure.command()
@click.option("--model", "model_ref", default="champion", show_default=True, help="NAME:VERSION, VERSION or ALIAS.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Bundle folder.")
@pass_context
@reported
def image(obj: Context, model_ref: str, out_dir: Path | None) -> None:
    """Build the scoring image of a model version and push it to ACR as <name>:<version> (what the qa stage does)."""
    from diabetes_mlops.deploy.bundle import bundle_dir
    from diabetes_mlops.deploy.targets import open_target
    from diabetes_mlops.registry import parse_model_ref

    name, ref = parse_model_ref(model_ref, obj.settings.model_name)
    registry = obj.registry()
    version = registry.get(name, ref).version
    out_dir = out_dir or bundle_dir(obj.settings, name, version)
    published = open_target(obj.settings, "azure").publish(registry, name, version, out_dir)
    obj.emit(published.to_dict(), f"pushed {published.image}")


@azure.command("check-access")
@click.option(
    "--for", "purposes", multiple=True, type=click.Choice(["release", "schedule", "drift"]),
    help="What to check for (repeatable) [all].",
)  # fmt: skip
@pass_context
@reported
def check_access(obj: Context, purposes: tuple[str, ...]) -> int | None:
    """List every role assignment the settings need, and the command that grants each one that is missing."""
    from diabetes_mlops.azure.access import PURPOSES, report
    from diabetes_mlops.azure.access import check_access as check

    found = check(obj.settings, purposes or PURPOSES)
    data = {"needs": [need.to_dict() for need in found], "missing": sum(need.granted is False for need in found)}
    missing = report(found)
    if any(need.granted is False for need in found):
        return obj.fail(data, f"{data['missing']} role assignments missing", missing)
    obj.emit(data, missing or f"all {len(found)} role assignments are in place")
    return None


@azure.command("rotate-key")
@click.option("--env", "env", type=click.Choice(["qa", "production"]), required=True, help="Whose key to rotate.")
@click.option(
    "--grace", type=float, default=60.0, show_default=True,
    help="Seconds the old key is still taken after Key Vault hands out the new one.",
)  # fmt: skip
@pass_context
@reported
def rotate_key(obj: Context, env: str, grace: float) -> None:
    """Give ENV's service a new scoring key in Key Vault, losing no request: the service takes both keys before
    the vault hands out the new one, and the old one for --grace seconds more."""
    from diabetes_mlops.deploy.targets.azure import AzureTarget

    target = AzureTarget(obj.settings)
    serving = target.rotate_key(env, grace)
    version = target.scoring_keys(env).version
    data = {"env": env, "secret_version": version, "serving": serving.to_dict() if serving else None}
    rolled = f"{serving.name}:{serving.version} at {serving.url} takes only the new key" if serving else "nothing runs"
    obj.emit(data, f"{env}: new scoring key (secret version {version}); {rolled}")
