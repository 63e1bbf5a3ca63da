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
    """Point an alias back at the version it held before; production's local endpoint follows it."""
    name = name or obj.settings.model_name
    if alias == "production" and name == obj.settings.model_name:
        from diabetes_mlops.pipelines import rollback_production

        outcome = rollback_production(obj.settings)
        obj.emit(outcome.to_dict(), f"{name}:production -> version {outcome.version} ({outcome.reason})")
        return
    entry = obj.registry().rollback(name, alias)
    obj.emit({"name": name, "alias": alias, "version": entry.version}, f"{name}:{alias} -> version {entry.version}")
