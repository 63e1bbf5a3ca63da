"""How the results a user gets back look: a short ``repr``, and in Jupyter a page with the plots inline.

Each result class keeps two one-line hooks (``__repr__`` and ``_repr_html_`` or ``_repr_markdown_``)
that call the functions here, so every rendering lives in this module. Plots are embedded as base64
``data:`` URIs: a notebook shows them from the object itself, and keeps showing them once saved.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diabetes_mlops.evaluate import Evaluation
    from diabetes_mlops.monitoring.drift import DriftReport
    from diabetes_mlops.pipelines import RetrainOutcome
    from diabetes_mlops.registry import ModelVersion, Registry

METRICS = ("mse", "rmse", "mae", "r2")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+\.png)\)")


def png_data_uri(path: Path) -> str:
    """The PNG file as a ``data:`` URI, for an ``<img>`` or a markdown image that needs no file."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def inline_images(markdown: str, base: Path) -> str:
    """``markdown`` with each image link to a PNG under ``base`` replaced by the image itself."""

    def embed(match: re.Match[str]) -> str:
        path = base / match[2]
        return f"![{match[1]}]({png_data_uri(path)})" if path.is_file() else match[0]

    return _IMAGE.sub(embed, markdown)


def _images_html(paths: list[Path]) -> str:
    shown = [p for p in paths if p.is_file()]
    return "".join(f'<img src="{png_data_uri(p)}" alt="{escape(p.stem)}" style="max-width:32%">' for p in shown)


def metrics_table_html(challenger: dict[str, float], champion: dict[str, float] | None) -> str:
    """Challenger and champion side by side, one row per metric."""
    rows = "".join(
        f"<tr><th>{key.upper()}</th><td>{challenger[key]:.4f}</td>"
        f"<td>{f'{champion[key]:.4f}' if champion else 'none'}</td></tr>"
        for key in METRICS
    )
    head = "<thead><tr><th>metric</th><th>challenger</th><th>champion</th></tr></thead>"
    return f"<table>{head}<tbody>{rows}</tbody></table>"


def _verdict(evaluation: Evaluation) -> str:
    return "promote the challenger" if evaluation.decision.promote else "keep the champion"


def evaluation_repr(evaluation: Evaluation) -> str:
    return f"<Evaluation {_verdict(evaluation)}: challenger R2 {evaluation.challenger['r2']:.4f}>"


def evaluation_html(evaluation: Evaluation) -> str:
    """The decision and its reason, then the metrics table."""
    champion = f"version {evaluation.champion_version}" if evaluation.champion_version else "no champion"
    return (
        f"<p><b>{escape(_verdict(evaluation))}</b>: {escape(evaluation.decision.reason)}</p>"
        f"{metrics_table_html(evaluation.challenger, evaluation.champion)}"
        f"<p>{evaluation.n_test} test rows; compared with {champion}</p>"
    )


def _retrain_head(outcome: RetrainOutcome) -> str:
    if outcome.registered is not None:
        return f"registered {outcome.registered.name}:{outcome.registered.version} as champion"
    return f"champion kept (version {outcome.evaluation.champion_version})"


def retrain_repr(outcome: RetrainOutcome) -> str:
    return f"<RetrainOutcome {_retrain_head(outcome)}; run {outcome.run_dir.name}>"


def retrain_html(outcome: RetrainOutcome) -> str:
    """Decision and reason first, the metrics table, the evaluation plots, then where the files are."""
    from diabetes_mlops.runs import RunDir
    from diabetes_mlops.tracking import run_id

    evaluation = outcome.evaluation
    run = RunDir(outcome.run_dir)
    tracked = run_id(outcome.run_dir)
    return (
        f"<p><b>{escape(_retrain_head(outcome))}</b>: {escape(evaluation.decision.reason)}</p>"
        f"{metrics_table_html(evaluation.challenger, evaluation.champion)}"
        f"<div>{_images_html(run.plots)}</div>"
        f"<p>run directory <code>{escape(str(outcome.run_dir))}</code>, model card "
        f"<code>{run.model_card.name}</code>{f', MLflow run <code>{tracked}</code>' if tracked else ''}</p>"
    )


@dataclass(frozen=True)
class ModelCard:
    """A run's model card: markdown that Jupyter shows with its plots."""

    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text()

    def __repr__(self) -> str:
        return f"<ModelCard {self.path}>"

    def _repr_markdown_(self) -> str:
        return inline_images(self.text, self.path.parent)


def drift_repr(report: DriftReport) -> str:
    return f"<DriftReport {report.status}: {report.message}>"


def drift_markdown(report: DriftReport) -> str:
    """The report's markdown page with the plots of drifting columns inline."""
    return inline_images(report.markdown(), Path(report.out_dir or "."))


def version_repr(entry: ModelVersion) -> str:
    r2 = entry.metrics.get("r2")
    return f"<ModelVersion {entry.name}:{entry.version} created {entry.created}" + (
        f", R2 {r2:.4f}>" if r2 is not None else ">"
    )


@dataclass(frozen=True)
class ModelListing:
    """Every registered version of a model with its metrics and aliases, as ``models list`` shows them."""

    name: str
    versions: list[ModelVersion]
    aliases: dict[str, int]

    def aliases_of(self, version: int) -> str:
        return ",".join(sorted(a for a, v in self.aliases.items() if v == version))

    def text(self) -> str:
        """One line per version: number, creation time, R2, MSE and aliases."""
        if not self.versions:
            return f"model {self.name!r} has no registered version"
        lines = [f"{'version':>7}  {'created':<29} {'r2':>7} {'mse':>10}  aliases"]
        for v in self.versions:
            lines.append(
                f"{v.version:>7}  {v.created:<29} {v.metrics['r2']:>7.4f} {v.metrics['mse']:>10.2f}  "
                f"{self.aliases_of(v.version)}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ModelListing {self.name}: {len(self.versions)} versions, aliases {self.aliases}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{v.version}</td><td>{escape(v.created)}</td><td>{v.metrics['r2']:.4f}</td>"
            f"<td>{v.metrics['mse']:.2f}</td><td>{escape(self.aliases_of(v.version))}</td></tr>"
            for v in self.versions
        )
        return (
            f"<p><b>{escape(self.name)}</b>: {len(self.versions)} registered versions</p><table><thead><tr>"
            f"<th>version</th><th>created</th><th>R2</th><th>MSE</th><th>aliases</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )


def model_listing(registry: Registry, name: str) -> ModelListing:
    """The registry's versions and aliases of ``name``."""
    return ModelListing(name, registry.list_versions(name), registry.aliases(name))


def release_repr(name: str, version: int | None, released: bool, reason: str) -> str:
    return f"<ReleaseOutcome {name}:{version} {'released' if released else 'not released'}: {reason}>"


def release_html(name: str, version: int | None, released: bool, reason: str, urls: dict[str, str | None]) -> str:
    """What the release did and why, then where each environment serves."""
    rows = "".join(
        f"<tr><th>{escape(env)}</th><td><code>{escape(url)}</code></td></tr>" for env, url in urls.items() if url
    )
    head = f"{name}:{version} {'released' if released else 'not released'}"
    return f"<p><b>{escape(head)}</b>: {escape(reason)}</p>" + (f"<table>{rows}</table>" if rows else "")
