"""The flow as plain functions: each step reads and writes files in a run directory, so it can run alone."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops import tracking
from diabetes_mlops.artifacts import load_model, save_model
from diabetes_mlops.errors import MlopsError
from diabetes_mlops.evaluate import Evaluation
from diabetes_mlops.runs import RunDir
from diabetes_mlops.train import TrainResult

if TYPE_CHECKING:
    import pandas as pd

    from diabetes_mlops.config import Settings
    from diabetes_mlops.display import ModelCard
    from diabetes_mlops.registry import ModelVersion, Registry
    from diabetes_mlops.schema import ValidationReport


class ValidationFailed(MlopsError):
    """The training data did not pass the schema; the report says where."""

    def __init__(self, report: ValidationReport, path: Path) -> None:
        super().__init__(f"{report.one_line()}; report: {path}")
        self.report = report


def validate_step(settings: Settings, frame: pd.DataFrame, run_dir: Path, source: str) -> ValidationReport:
    """Validate the training table and write ``validation.json``; raise ValidationFailed when it fails."""
    from diabetes_mlops.schema import validate_frame

    report = validate_frame(frame, source=source)
    path = RunDir(run_dir).validation
    path.write_text(json.dumps(report.to_dict(), indent=2))
    if not report.ok:
        raise ValidationFailed(report, path)
    return report


def train_step(settings: Settings, frame: pd.DataFrame, run_dir: Path) -> TrainResult:
    """Train, then write the model, ``train.json`` and the test split the evaluation will use."""
    from diabetes_mlops.data import fingerprint, split
    from diabetes_mlops.train import train_on_split

    train_part, test = split(frame, settings.test_size, settings.seed)
    model, result = train_on_split(train_part, test, settings, fingerprint(frame))
    run = RunDir(run_dir)
    sha256 = save_model(model, run.model)
    test.to_parquet(run.test_split)
    run.train.write_text(json.dumps({**result.to_dict(), "sha256": sha256}, indent=2))
    tracking.log_training(settings, run_dir, result)
    return result


def _read_train(run: RunDir) -> tuple[TrainResult, str]:
    path = run.train
    if not path.is_file():
        raise MlopsError(f"{run.path} has no {path.name}: run `diabetes-mlops train` first")
    data = json.loads(path.read_text())
    sha256 = data.pop("sha256")
    return TrainResult.from_dict(data), sha256


def evaluate_step(settings: Settings, registry: Registry, run_dir: Path) -> Evaluation:
    """Compare the run's challenger with the registered champion; write evaluation, card and plots."""
    import pandas as pd

    from diabetes_mlops.evaluate import evaluate
    from diabetes_mlops.model_card import write_model_card, write_plots

    run = RunDir(run_dir)
    result, sha256 = _read_train(run)
    challenger = load_model(run.model, sha256)
    test = pd.read_parquet(run.test_split)
    champion_version = registry.aliases(settings.model_name).get("champion")
    champion = registry.load(settings.model_name, champion_version) if champion_version else None
    evaluation = evaluate(
        challenger,
        champion,
        test,
        champion_version=champion_version,
        r2_floor=settings.r2_floor,
        min_improvement=settings.min_improvement,
    )
    evaluation.save(run_dir)
    plots = write_plots(run_dir, challenger, champion, test)
    card = write_model_card(run_dir, result, evaluation)
    tracking.log_evaluation(settings, run_dir, evaluation, [run.evaluation, card, *plots])
    return evaluation


def register_step(settings: Settings, registry: Registry, run_dir: Path) -> ModelVersion | None:
    """Register the challenger and make it champion when the evaluation says so; None when it does not.

    Registering the same run twice returns the version registered the first time.
    """
    run = RunDir(run_dir)
    marker = run.registered
    if marker.is_file():
        registered = json.loads(marker.read_text())
        return registry.get(registered["name"], registered["version"])
    evaluation = Evaluation.read(run_dir)
    if not evaluation.decision.promote:
        return None
    result, sha256 = _read_train(run)
    metadata = {
        "params": result.params,
        "metrics": result.metrics,
        "data_fingerprint": result.data_fingerprint,
        "git_commit": result.git_commit,
        "replaced": evaluation.champion_version,
        "run_id": run_dir.name,
        "library_versions": result.library_versions,
        "tags": {
            "trained_by": "diabetes-mlops",
            "decision": evaluation.decision.reason,
            **tracking.registry_tags(run_dir),
        },
    }
    entry = registry.register(settings.model_name, load_model(run.model, sha256), metadata)
    registry.set_alias(settings.model_name, "champion", entry.version)
    tracking.log_registered(settings, run_dir, entry)
    marker.write_text(json.dumps({"name": entry.name, "version": entry.version}))
    return entry


@dataclass
class RetrainOutcome:
    """What a retrain did: the run directory, the metrics, the decision and the version it registered."""

    run_dir: Path
    train: TrainResult
    evaluation: Evaluation
    registered: ModelVersion | None

    @property
    def kept_champion(self) -> bool:
        return self.registered is None

    @property
    def model_card(self) -> ModelCard:
        from diabetes_mlops.display import ModelCard

        return ModelCard(RunDir(self.run_dir).model_card)

    def __repr__(self) -> str:
        from diabetes_mlops.display import retrain_repr

        return retrain_repr(self)

    def _repr_html_(self) -> str:
        from diabetes_mlops.display import retrain_html

        return retrain_html(self)

    def to_dict(self) -> dict[str, object]:
        return {
            "run_dir": str(self.run_dir),
            "kept_champion": self.kept_champion,
            "decision": asdict(self.evaluation.decision),
            "metrics": self.evaluation.challenger,
            "champion_metrics": self.evaluation.champion,
            "champion_version": self.evaluation.champion_version,
            "registered_version": self.registered.version if self.registered else None,
            "data_fingerprint": self.train.data_fingerprint,
        }


def retrain(settings: Settings, source: Path | str | None = None) -> RetrainOutcome:
    """validate -> train -> evaluate -> register-if-better, in a new run directory."""
    from diabetes_mlops.datasets import current
    from diabetes_mlops.registry import open_registry

    registry = open_registry(settings)
    run_dir = RunDir.create(settings).path
    data = current(settings, source)
    validate_step(settings, data.frame, run_dir, data.source)
    result = train_step(settings, data.frame, run_dir)
    evaluation = evaluate_step(settings, registry, run_dir)
    registered = register_step(settings, registry, run_dir)
    return RetrainOutcome(run_dir, result, evaluation, registered)
