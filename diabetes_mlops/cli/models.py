"""Verbs of the model registry: models list|show, promote, rollback."""

from __future__ import annotations

import json

import click

from diabetes_mlops.cli.base import Context, main, pass_context, reported


@main.group()
def models() -> None:
    """Registered model versions."""


@models.command("list")
@click.option("--name", help="Model name [settings: model_name].")
@pass_context
@reported
def models_list(obj: Context, name: str | None) -> None:
    """Every version of a model with its metrics and aliases."""
    from diabetes_mlops.display import model_listing

    listing = model_listing(obj.registry(), name or obj.settings.model_name)
    data = {"name": listing.name, "aliases": listing.aliases, "versions": [v.to_dict() for v in listing.versions]}
    obj.emit(data, listing.text())


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
@click.option("--target", type=click.Choice(["local", "azure"]), help="Production's target [settings: deploy_target].")
@pass_context
@reported
def promote(obj: Context, ref: str, alias: str, target: str | None) -> None:
    """Point an alias at a version: REF is NAME:VERSION or VERSION.

    Production's alias and what production serves never disagree: with --alias production, a running
    production deployment is switched to the version (and smoke-tested) before the alias moves.
    """
    from diabetes_mlops.registry import parse_model_ref

    name, version_ref = parse_model_ref(ref, obj.settings.model_name)
    registry = obj.registry()
    entry = registry.get(name, version_ref)
    if alias == "production" and name == obj.settings.model_name:
        from diabetes_mlops.deploy.release import promote_production

        outcome = promote_production(obj.settings, entry.version, target)
        obj.emit(outcome.to_dict(), f"{name}:production -> version {entry.version} ({outcome.reason})")
        return
    registry.set_alias(name, alias, entry.version)
    obj.emit({"name": name, "alias": alias, "version": entry.version}, f"{name}:{alias} -> version {entry.version}")


@main.command()
@click.option("--name", help="Model name [settings: model_name].")
@click.option("--alias", default="production", show_default=True, type=click.Choice(["champion", "production"]))
@click.option("--target", type=click.Choice(["local", "azure"]), help="Production's target [settings: deploy_target].")
@pass_context
@reported
def rollback(obj: Context, name: str | None, alias: str, target: str | None) -> None:
    """Point an alias back at the version it held before (twice: two versions back).

    For production, on either target, the earlier version is served and smoke-tested first, then the alias moves.
    """
    name = name or obj.settings.model_name
    if alias == "production" and name == obj.settings.model_name:
        from diabetes_mlops.deploy.release import rollback as rollback_production

        outcome = rollback_production(obj.settings, target)
        obj.emit(outcome.to_dict(), f"{name}:production -> version {outcome.version} ({outcome.reason})")
        return
    entry = obj.registry().rollback(name, alias)
    obj.emit({"name": name, "alias": alias, "version": entry.version}, f"{name}:{alias} -> version {entry.version}")
