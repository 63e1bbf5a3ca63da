"""Verbs of the release: serve, package, deploy, smoke-test, undeploy, endpoints, release."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from diabetes_mlops.cli.base import EXIT_FAILURE, Context, main, pass_context, reported, run_dir_option
from diabetes_mlops.errors import MlopsError

ENVIRONMENTS = click.Choice(["qa", "production"])
F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from diabetes_mlops.pipelines import ReleaseOutcome


def _model_option(default: str = "champion") -> Callable[[F], F]:
    return click.option(
        "--model", "model_ref", default=default, show_default=True, help="NAME:VERSION, NAME:ALIAS, VERSION or ALIAS."
    )


@main.command()
@_model_option()
@click.option("--model-dir", type=click.Path(path_type=Path, file_okay=False), help="A model directory instead.")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="DIABETES_MLOPS_HOST")
@click.option("--port", type=int, default=8000, show_default=True, envvar="PORT")
@click.option("--workers", type=int, help="Worker processes [settings: serve_workers].")
@click.option("--fd", type=int, hidden=True, help="Serve on this inherited listening socket.")
@click.option("--ready-file", type=click.Path(path_type=Path), hidden=True, help="Written once accepting.")
@pass_context
@reported
def serve(
    obj: Context,
    model_ref: str,
    model_dir: Path | None,
    host: str,
    port: int,
    workers: int | None,
    fd: int | None,
    ready_file: Path | None,
) -> None:
    """Run the scoring service in the foreground until SIGTERM or Ctrl-C."""
    from diabetes_mlops.registry import parse_model_ref
    from diabetes_mlops.serving.server import serve as run_server

    if model_dir is None:
        name, ref = parse_model_ref(model_ref, obj.settings.model_name)
        model_dir = obj.registry().version_dir(name, ref)
    run_server(obj.settings, model_dir, host, port, workers or obj.settings.serve_workers, fd, ready_file)


@main.command("smoke-test")
@click.argument("url")
@click.option("--key", envvar="DIABETES_MLOPS_SCORING_KEY", help="Scoring key [env DIABETES_MLOPS_SCORING_KEY].")
@click.option("--expect-version", type=int, help="Fail unless the service runs this model version.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for readiness.")
@pass_context
@reported
def smoke_test(obj: Context, url: str, key: str | None, expect_version: int | None, timeout: float) -> int:
    """Check the service at URL: health, readiness, the reference payload, the model version."""
    from diabetes_mlops.deploy.smoke import smoke_test as run_smoke_test

    result = run_smoke_test(url, key, expect_version, timeout)
    obj.emit(result.to_dict(), f"smoke test {'passed' if result.ok else 'FAILED'}: {result.reason}")
    return 0 if result.ok else EXIT_FAILURE


@main.command()
@_model_option()
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="[<home>/bundles/<name>-<version>]"
)
@pass_context
@reported
def package(obj: Context, model_ref: str, out_dir: Path | None) -> None:
    """Write the scoring bundle (a Docker build context) of a registered model version."""
    from diabetes_mlops.deploy.bundle import write_bundle
    from diabetes_mlops.pipelines import bundle_dir
    from diabetes_mlops.registry import parse_model_ref

    name, ref = parse_model_ref(model_ref, obj.settings.model_name)
    registry = obj.registry()
    entry = registry.get(name, ref)
    path = write_bundle(registry, name, entry.version, out_dir or bundle_dir(obj.settings, name, entry.version))
    obj.emit({"bundle": str(path)}, f"bundle written: {path}\nbuild it with: docker build -t {name} {path}")


@main.command()
@click.option("--env", "env", type=ENVIRONMENTS, required=True, help="Environment to deploy to.")
@click.option("--target", type=click.Choice(["local", "azure"]), default="local", show_default=True)
@_model_option()
@click.option("--port", type=int, help="Local port [env DIABETES_MLOPS_QA_PORT / _PRODUCTION_PORT; 8001 / 8000].")
@pass_context
@reported
def deploy(obj: Context, env: str, target: str, model_ref: str, port: int | None) -> None:
    """Deploy a model version to QA or production and wait until it is ready."""
    from diabetes_mlops.registry import parse_model_ref

    name, ref = parse_model_ref(model_ref, obj.settings.model_name)
    entry = obj.registry().get(name, ref)
    if target == "azure":
        from diabetes_mlops.azure.targets import deploy_azure

        result = deploy_azure(obj.settings, env, entry)
        obj.emit(result, f"{env}: {entry.name}:{entry.version} deployed to Azure at {result['url']}")
        return
    from diabetes_mlops.deploy.local import deploy as deploy_local

    deployment = deploy_local(obj.settings, env, entry.name, entry.version, port)
    obj.emit(
        deployment.to_dict(),
        f"{env}: {entry.name}:{entry.version} serving at {deployment.url} (stop it: diabetes-mlops undeploy {env})",
    )


@main.command()
@click.argument("env", type=ENVIRONMENTS)
@click.option("--target", type=click.Choice(["local", "azure"]), default="local", show_default=True)
@pass_context
@reported
def undeploy(obj: Context, env: str, target: str) -> None:
    """Stop the deployment of ENV (on Azure: delete the QA container group)."""
    from diabetes_mlops.deploy.local import undeploy as undeploy_local

    if target == "azure":
        if env != "qa":
            raise MlopsError("on Azure only QA is undeployed here; production (AKS) is rolled back, not removed")
        from diabetes_mlops.azure.targets import undeploy_qa

        deleted = undeploy_qa(obj.settings)
        obj.emit({"env": env, "stopped": deleted}, f"{env}: {'deleted' if deleted else 'nothing was running'}")
        return

    stopped = undeploy_local(obj.settings, env)
    obj.emit({"env": env, "stopped": stopped}, f"{env}: {'stopped' if stopped else 'nothing was running'}")


@main.command()
@pass_context
@reported
def endpoints(obj: Context) -> None:
    """The local deployments that run, with URL, model version and health."""
    from diabetes_mlops.deploy.local import endpoints as list_endpoints

    found = list_endpoints(obj.settings)
    lines = [
        f"{d.env:<11} {d.url:<24} {d.model_name}:{d.model_version}  {'healthy' if d.healthy else 'UNHEALTHY'}"
        for d in found
    ]
    obj.emit({"endpoints": [d.to_dict() for d in found]}, "\n".join(lines) or "no local deployment runs")


@main.command()
@_model_option()
@run_dir_option
@pass_context
@reported
def release(obj: Context, model_ref: str, run_dir: Path | None) -> None:
    """package -> deploy QA -> smoke test -> deploy production -> smoke test -> alias production."""
    from diabetes_mlops.pipelines import release as release_pipeline
    from diabetes_mlops.registry import parse_model_ref

    _, ref = parse_model_ref(model_ref, obj.settings.model_name)
    outcome = release_pipeline(obj.settings, ref, run_dir)
    obj.emit(outcome.to_dict(), _release_text(outcome))


def _release_text(outcome: ReleaseOutcome) -> str:
    if not outcome.released:
        return f"release: nothing to do ({outcome.reason})"
    return f"released {outcome.name}:{outcome.version}: QA {outcome.qa_url}, production {outcome.production_url}"
