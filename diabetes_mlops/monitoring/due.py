"""When a retrain is due: the training data is not the champion's, or the last drift report alarmed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.monitoring.verdict import STATUS_DRIFT, Verdict
from diabetes_mlops.runs import RunDir

if TYPE_CHECKING:
    from diabetes_mlops.config import Settings
    from diabetes_mlops.registry import Registry


@dataclass(frozen=True)
class EvaluatedRun:
    """A run that got as far as an evaluation: its name, when it was evaluated, the data it trained on."""

    name: str
    evaluated_at: float
    data_fingerprint: str | None


def _evaluated_runs(settings: Settings) -> list[EvaluatedRun]:
    """Every evaluated run, oldest evaluation first (run names need not sort by time: Jenkins names them)."""
    runs = []
    for run in RunDir.all(settings):
        if run.evaluation.is_file() and run.train.is_file():
            try:
                fingerprint = json.loads(run.train.read_text()).get("data_fingerprint")
            except ValueError:
                continue  # a damaged run cannot vouch for anything; it does not stop the check
            runs.append(EvaluatedRun(run.name, run.evaluation.stat().st_mtime, fingerprint))
    return sorted(runs, key=lambda run: run.evaluated_at)


@dataclass
class RetrainDue:
    """Whether a retrain is due, and every reason for (or against) it."""

    due: bool
    reasons: list[str]
    data_fingerprint: str
    champion_fingerprint: str | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def retrain_due(settings: Settings, registry: Registry, source: Path | str | None = None) -> RetrainDue:
    """Due when there is no champion, the training data is not the champion's, or drift alarmed since.

    Each cause is handled once a retrain has been evaluated on it, whatever that retrain decided, since
    retraining again on the same data would decide the same: new data counts until a run has tried that
    fingerprint, a drift alarm until a run was evaluated after the report.
    """
    from diabetes_mlops import datasets

    current = datasets.current(settings, source).fingerprint
    version = registry.aliases(settings.model_name).get("champion")
    if version is None:
        return RetrainDue(True, ["no champion is registered yet"], current, None)
    trained_on = registry.get(settings.model_name, version).data_fingerprint
    runs = _evaluated_runs(settings)
    reasons: list[str] = []
    data_state = f"champion version {version} was trained on the current data (fingerprint {current[:12]})"
    if trained_on != current:
        tried = next((run.name for run in runs if run.data_fingerprint == current), None)
        data_state = f"the current data (fingerprint {current[:12]}) was already tried by run {tried}"
        if tried is None:
            reasons.append(
                f"the training data (fingerprint {current[:12]}) differs from champion version {version}'s "
                f"({(trained_on or 'unknown')[:12]})"
            )
    verdict = Verdict.last(settings)
    if verdict is None:
        drift_state = "no drift report was made yet"
    elif verdict.status != STATUS_DRIFT:
        drift_state = f"the last drift report ({verdict.id}) raised no alarm: {verdict.status}"
    else:
        reported_at = verdict.created_at.timestamp()
        handled_by = next((run.name for run in runs if run.evaluated_at > reported_at), None)
        drift_state = f"the drift alarm of report {verdict.id} was handled by run {handled_by}"
        if handled_by is None:
            reasons.append(f"the drift report {verdict.id} found drift in {', '.join(verdict.drifted)}")
    if reasons:
        return RetrainDue(True, reasons, current, trained_on)
    return RetrainDue(False, [f"{data_state}, and {drift_state}"], current, trained_on)
