"""A run directory: one retrain's files, each step reading what the one before wrote.

Layout of ``<home>/runs/<run-id>/`` (a run id is ``<UTC time>-<6 hex digits>``, so names sort by creation)::

    validation.json              the schema's report on the training table          validate
    model.skops                  the challenger                                     train
    train.json                   params, test metrics, data fingerprint, timings,   train
                                 the model file's sha256
    test.parquet                 the test split the evaluation scores on            train
    mlflow.json                  the MLflow run id and tracking URI                 train (tracking on)
    evaluation.json              champion vs challenger and the decision            evaluate
    model_card.md                the card, with the three plots beside it           evaluate
    predicted_vs_actual.png, residuals.png, champion_vs_challenger.png
    registered.json              the version registered from this run               register
    bundle/, release-<stage>.json  the scoring bundle and each stage's outcome      release

A step that crashes leaves the files of the steps before it, so it can be run again alone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.artifacts import MODEL_FILE
from diabetes_mlops.errors import MlopsError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from diabetes_mlops.config import Settings

VALIDATION_FILE = "validation.json"
TRAIN_FILE = "train.json"
TEST_SPLIT_FILE = "test.parquet"
MLFLOW_FILE = "mlflow.json"
EVALUATION_FILE = "evaluation.json"
MODEL_CARD = "model_card.md"
PLOTS = ("predicted_vs_actual.png", "residuals.png", "champion_vs_challenger.png")
REGISTERED_FILE = "registered.json"
BUNDLE_DIR = "bundle"


def new_id() -> str:
    """A fresh ``<UTC time>-<random>`` id; ids sort by creation time (run directories, drift reports, writers)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


class _File:
    """A run directory's file by name: ``run.train`` is ``run.path / "train.json"``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, run: RunDir, owner: type[RunDir]) -> Path:
        return run.path / self.name


@dataclass(frozen=True)
class RunDir:
    """Where each file of one run lives; the directory itself may have any name (Jenkins names its own)."""

    path: Path

    validation = _File(VALIDATION_FILE)
    model = _File(MODEL_FILE)
    train = _File(TRAIN_FILE)
    test_split = _File(TEST_SPLIT_FILE)
    mlflow = _File(MLFLOW_FILE)
    evaluation = _File(EVALUATION_FILE)
    model_card = _File(MODEL_CARD)
    registered = _File(REGISTERED_FILE)
    bundle = _File(BUNDLE_DIR)

    @classmethod
    def create(cls, settings: Settings) -> RunDir:
        """A new, empty run directory under ``runs_dir`` named by ``new_id``."""
        path = settings.runs_dir / new_id()
        path.mkdir(parents=True)
        return cls(path)

    @classmethod
    def all(cls, settings: Settings) -> Iterator[RunDir]:
        """Every run directory under ``runs_dir``, in no particular order."""
        if settings.runs_dir.is_dir():
            yield from (cls(path) for path in settings.runs_dir.iterdir() if path.is_dir())

    @classmethod
    def latest_trained(cls, settings: Settings) -> RunDir:
        """The run with the most recent training in it (``train.json``), whatever its name."""
        trained = [run.train for run in cls.all(settings) if run.train.is_file()]
        if not trained:
            raise MlopsError(f"no trained run under {settings.runs_dir}: run `diabetes-mlops train` first")
        return cls(max(trained, key=lambda path: path.stat().st_mtime_ns).parent)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def plots(self) -> list[Path]:
        return [self.path / name for name in PLOTS]

    def release(self, stage: str) -> Path:
        return self.path / f"release-{stage}.json"
