"""Verbs of the release: serve, package, deploy, smoke-test, undeploy, endpoints, release."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from diabetes_mlops.cli.base import Context, main, pass_context, reported, run_dir_option

ENVIRONMENTS = click.Choice(["qa", "production"])
F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from diabetes_mlops.deploy.release import ReleaseOutcome


def _model_option(default: str = "champion") -> Callable[[F], F]:
    return click.option(
        "--model", "model_ref", default=default, show_default=True, help="NAME:VERSION, NAME:ALIAS, VERSION or ALIAS."
    )


def _target_option(func: F) -> F:
    return click.option(
        "--target",
        type=click.Choice(["local", "azure"]),
        help="Where the deployments run [settings: deploy_target; local].",
    )(func)


@main.command()
@_model_option()
@click.option("--model-dir", type=click.Path(path_type=Path, file_okay=False), help="A model directory instead.")
@click.option("--host", help="The address to listen on [settings: host; 127.0.0.1].")
@click.option("--port", type=int, default=8000, show_default=True, envvar="PORT", help="[env PORT]")
@click.option("--workers", type=int, help="Worker processes [settings: serve_workers].")
@pass_context
@reported
def serve(
    obj: Context,
    model_ref: str,
    model_dir: Path | None,
    host: str | None,
    port: int,
    workers: int | None,
) -> None:
    """Run the scoring service in the foreground until SIGTERM or Ctrl-C; print its URL once it is ready."""
    from diabetes_mlops.registry import parse_model_ref
    from diabetes_mlops.serving.server import serve as run_server

    served = str(model_dir)
    if model_dir is None:
        name, ref = parse_model_ref(model_ref, obj.settings.model_name)
        registry = obj.registry()
        entry = registry.get(name, ref)
        model_dir, served = registry.version_dir(name, entry.version), f"{entry.name}:{entry.version}"

    def announce(url: str) -> None:
        click.echo(f"serving {served} at {url} (Ctrl-C stops it)")

    workers = workers or obj.settings.serve_workers
    run_server(obj.settings, model_dir, host or obj.settings.host, port, workers, on_ready=announce)


@main.command("smoke-test")
@click.argument("url")
@click.option("--key", envvar="DIABETES_MLOPS_SCORING_KEY", help="Scoring key [env DIABETES_MLOPS_SCORING_KEY].")
@click.option("--env", "env", type=ENVIRONMENTS, help="Send this env's key (Key Vault's on Azure), not the variable's.")
@_target_option
@click.option("--expect-version", type=int, help="Fail unless the service runs this model version.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for readiness.")
@pass_context
@reported
def smoke_test(
    obj: Context,
    url: str,
    key: str | None,
    env: str | None,
    target: str | None,
    expect_version: int | None,
    timeout: float,
) -> int:
    """Check the service at URL: health, readiness, the reference payload, the model version."""
    from diabetes_mlops.deploy.smoke import smoke_test as run_smoke_test
    from diabetes_mlops.deploy.targets import open_target

    typed = click.get_current_context().get_parameter_source("key") == click.core.ParameterSource.COMMANDLINE
    if env is not None and not typed:  # the environment's own key, over one the agent's environment holds
        key = open_target(obj.settings, target).scoring_key(env)

    result = run_smoke_test(url, key, expect_version, timeout)
    if not result.ok:
        return obj.fail(result.to_dict(), f"smoke test FAILED: {result.reason}")
    obj.emit(result.to_dict(), f"smoke test passed: {result.reason}")
    return 0


@main.command()
@_model_option()
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="[<home>/bundles/<name>-<version>]"
)
@pass_context
@reported
def package(obj: Context, model_ref: str, out_dir: Path | None) -> None:
    """Write the scoring bundle (a Docker build context) of a registered model version."""
    from diabetes_mlops.deploy.bundle import bundle_dir, write_bundle
    from diabetes_mlops.registry import parse_model_ref

    name, ref = parse_model_ref(model_ref, obj.settings.model_name)
    registry = obj.registry()
    entry = registry.get(name, ref)
    path = write_bundle(registry, name, entry.version, out_dir or bundle_dir(obj.settings, name, entry.version))
    obj.emit({"bundle": str(path)}, f"bundle written: {path}\nbuild it with: docker build -t {name} {path}")


@main.command()
@click.option("--env", "env", type=ENVIRONMENTS, required=True, help="Environment to deploy to.")
@_target_option
@_model_option()
@click.option("--port", type=int, help="Local port [env DIABETES_MLOPS_QA_PORT / _PRODUCTION_PORT; 8001 / 8000].")
@pass_context
@reported
def deploy(obj: Context, env: str, target: str | None, model_ref: str, port: int | None) -> None:
    """Deploy a model version to QA or production and wait until it is up (`release` also smoke-tests it).

    On Azure the version's image must have been published (`release --stage qa` does it): QA runs on ACI,
    production on AKS.
    """
    from diabetes_mlops.deploy.release import published_version
    from diabetes_mlops.deploy.targets import open_target
    from diabetes_mlops.registry import parse_model_ref

    settings = obj.settings
    if port:
        settings = replace(settings, qa_port=port) if env == "qa" else replace(settings, production_port=port)
    name, ref = parse_model_ref(model_ref, settings.model_name)
    registry = obj.registry()
    entry = registry.get(name, ref)
    deployer = open_target(settings, target)
    endpoint = deployer.deploy(env, published_version(settings, registry, deployer, entry.name, entry.version))
    obj.emit(
        endpoint.to_dict(),
        f"{env}: {entry.name}:{entry.version} serving at {endpoint.url} "
        f"(stop it: diabetes-mlops undeploy {env} --target {deployer.name})",
    )


@main.command()
@click.argument("env", type=ENVIRONMENTS, required=False)
@click.option("--all", "everything", is_flag=True, help="Stop every local deployment of this user, in any home.")
@_target_option
@pass_context
@reported
def undeploy(obj: Context, env: str | None, everything: bool, target: str | None) -> None:
    """Stop and remove the deployment of ENV (Azure: the ACI group of QA, or production's AKS objects).

    With --all, stop every local deployment of this user, whatever its home.
    """
    from diabetes_mlops.deploy.targets import open_target

    if everything:
        from diabetes_mlops.deploy.local import undeploy_all

        if env is not None:
            raise click.UsageError("--all stops every local deployment: give no ENV")
        entries = undeploy_all()
        lines = [f"{e.env} of {e.home}: stopped" for e in entries]
        obj.emit({"stopped": [asdict(e) for e in entries]}, "\n".join(lines) or "no local deployment runs")
        return
    if env is None:
        raise click.UsageError("give ENV (qa or production), or --all")
    deployer = open_target(obj.settings, target)
    stopped = deployer.undeploy(env)
    text = f"{env}: stopped" if stopped else f"{env}: nothing was running"
    if not stopped and deployer.name == "local":
        text = _nothing_here(obj, env)
    obj.emit({"env": env, "stopped": stopped}, text)


def _nothing_here(obj: Context, env: str) -> str:
    """Say that nothing ran in this home, and where ``env`` runs in other homes, with how to stop it."""
    from diabetes_mlops.deploy.runtime import running

    lines = [f"{env}: nothing was running in {obj.settings.home.resolve()}"]
    lines += [f"{e.env} of {e.home} runs at {e.url}; stop it: {e.stop_command()}" for e in running() if e.env == env]
    return "\n".join(lines)


@main.command()
@_target_option
@pass_context
@reported
def endpoints(obj: Context, target: str | None) -> None:
    """What each environment serves, with URL, model version and health; locally, other homes' too."""
    from diabetes_mlops.deploy.local import elsewhere
    from diabetes_mlops.deploy.targets import ENVIRONMENTS as ENVS
    from diabetes_mlops.deploy.targets import open_target

    deployer = open_target(obj.settings, target)
    found = [e for e in (deployer.endpoint(env) for env in ENVS) if e is not None]
    lines = [f"{e.env:<11} {e.url:<24} {e.name}:{e.version}  {'healthy' if e.healthy else 'UNHEALTHY'}" for e in found]
    others = elsewhere(obj.settings) if deployer.name == "local" else []
    lines += [
        f"{d.env:<11} {d.url:<24} {d.model_name}:{d.model_version}  {'healthy' if d.healthy else 'UNHEALTHY'}"
        f"  (home {d.home})"
        for d in others
    ]
    obj.emit(
        {"endpoints": [e.to_dict() for e in found], "other_homes": [d.to_dict() for d in others]},
        "\n".join(lines) or f"nothing is deployed ({deployer.name})",
    )


@main.command()
@_model_option()
@click.option(
    "--stage",
    type=click.Choice(["qa", "production", "all"]),
    default="all",
    show_default=True,
    help="qa: publish, deploy QA, smoke-test; production: deploy what passed QA, smoke-test, move the alias.",
)
@_target_option
@run_dir_option
@pass_context
@reported
def release(obj: Context, model_ref: str, stage: str, target: str | None, run_dir: Path | None) -> None:
    """Release a version: publish -> QA -> smoke test, then production -> smoke test -> alias production.

    A stage with nothing to do says so and exits 0. A failed smoke test exits 1; production is left serving
    what its alias names.
    """
    from diabetes_mlops.deploy.release import release as run_release
    from diabetes_mlops.registry import parse_model_ref

    _, ref = parse_model_ref(model_ref, obj.settings.model_name)
    outcome = run_release(obj.settings, ref, run_dir, stage=stage, target=target)
    obj.emit(outcome.to_dict(), release_text(outcome))


def release_text(outcome: ReleaseOutcome) -> str:
    """One line for a person: what the stage did, or why it did nothing."""
    if not outcome.released:
        return f"{outcome.stage}: nothing to do ({outcome.reason})"
    where = ", ".join(f"{e.env} {e.url}" for e in (outcome.qa, outcome.production) if e is not None)
    return f"{outcome.stage}: {outcome.name}:{outcome.version} {outcome.reason} on {outcome.target} ({where})"
