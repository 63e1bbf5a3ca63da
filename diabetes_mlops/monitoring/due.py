"""When a retrain is due: the training data is not the champion's, or the last drift report alarmed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.errors import MlopsError
from diabetes_mlops.monitoring.drift import LAST_FILE, STATUS_DRIFT
from diabetes_mlops.runs import RunDir

if TYPE_CHECKING:
    from diabetes_mlops.config import Settings
    from diabetes_mlops.registry import Registry


def last_verdict(settings: Settings) -> dict[str, object] | None:
    """The last drift report's verdict, or None when no report was made yet."""
    path = settings.drift_dir / LAST_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise MlopsError(f"{path}: not a drift verdict ({exc})") from exc


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
    verdict = last_verdict(settings)
    if verdict is None:
        drift_state = "no drift report was made yet"
    elif verdict.get("status") != STATUS_DRIFT:
        drift_state = f"the last drift report ({verdict['id']}) raised no alarm: {verdict.get('status')}"
    else:
        reported_at = datetime.fromisoformat(str(verdict["created"])).timestamp()
        handled_by = next((run.name for run in runs if run.evaluated_at > reported_at), None)
        drift_state = f"the drift alarm of report {verdict['id']} was handled by run {handled_by}"
        if handled_by is None:
            drifted = ", ".join(map(str, verdict.get("drifted", [])))  # type: ignore[call-overload]
            reasons.append(f"the drift report {verdict['id']} found drift in {drifted}")
    if reasons:
        return RetrainDue(True, reasons, current, trained_on)
    return RetrainDue(False, [f"{data_state}, and {drift_state}"], current, trained_on)
