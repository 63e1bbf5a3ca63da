"""``retrain --if-due``: retrains on new data or an unhandled drift alarm, else exits 3 at once saying why."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from diabetes_mlops.config import Settings
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.ingest import ingest_file
from diabetes_mlops.monitoring.drift import STATUS_DRIFT, drift_report
from diabetes_mlops.monitoring.due import retrain_due
from diabetes_mlops.monitoring.store import LocalLogStore
from diabetes_mlops.monitoring.verdict import Verdict
from diabetes_mlops.pipelines import retrain
from diabetes_mlops.registry import open_registry


def runs(settings: Settings) -> list[Path]:
    return sorted(settings.runs_dir.iterdir()) if settings.runs_dir.is_dir() else []


def alarm(settings: Settings, tmp_path: Path) -> None:
    """Log 300 rows with ``s5`` moved well off the training data and make a drift report of them."""
    rows = load_builtin().sample(300, replace=True, random_state=0).loc[:, list(FEATURES)].to_numpy().copy()
    rows[:, FEATURES.index("s5")] += 1.0
    record = {"time": "2099-01-01T00:00:00+00:00", "model_name": "diabetes", "model_version": 1, "latency_ms": 1.0}
    LocalLogStore(settings.logs_dir).write(
        {**record, "request_id": f"r{i}", "inputs": [row], "predictions": [150.0]}
        for i, row in enumerate(rows.tolist())
    )
    report = drift_report(settings, LocalLogStore(settings.logs_dir), open_registry(settings), out_dir=tmp_path / "d")
    assert report.status == STATUS_DRIFT


def test_without_a_champion_a_retrain_is_due(settings: Settings, cli: Callable[..., object]) -> None:
    done = cli("retrain", "--if-due")
    assert done.returncode == 0, done.stderr
    assert "retrain due: no champion is registered yet" in done.stdout
    assert open_registry(settings).aliases(settings.model_name)["champion"] == 1


def test_not_due_exits_3_at_once_without_a_run(settings: Settings, cli: Callable[..., object]) -> None:
    retrain(settings)
    before = runs(settings)
    done = cli("--json", "retrain", "--if-due")
    assert done.returncode == 3, done.stderr
    data = json.loads(done.stdout)
    assert data["retrained"] is False and data["due"]["due"] is False
    assert "trained on the current data" in data["due"]["reasons"][0]
    assert runs(settings) == before


def test_new_data_makes_it_due_once(settings: Settings, cli: Callable[..., object], tmp_path: Path) -> None:
    retrain(settings)
    batch = load_builtin().sample(40, random_state=1)
    batch["s2"] += 0.5
    batch.to_csv(tmp_path / "b.csv", index=False)
    assert ingest_file(settings, tmp_path / "b.csv").n_added == 40
    due = cli("retrain", "--if-due")
    assert due.returncode in (0, 3), due.stderr
    assert "differs from champion version 1" in due.stdout
    assert len(runs(settings)) == 2
    # Whatever that run decided, the same data would decide the same: not due again.
    again = cli("retrain", "--if-due")
    assert again.returncode == 3
    assert "not due" in again.stdout
    assert len(runs(settings)) == 2


def test_a_drift_alarm_makes_it_due_until_a_retrain_handles_it(settings: Settings, tmp_path: Path) -> None:
    retrain(settings)
    registry = open_registry(settings)
    assert not retrain_due(settings, registry).due
    alarm(settings, tmp_path)
    due = retrain_due(settings, registry)
    assert due.due and any("found drift in s5" in r for r in due.reasons)
    outcome = retrain(settings)
    assert outcome.kept_champion  # same data: the alarm is handled even though nothing changed
    after = retrain_due(settings, registry)
    assert not after.due
    assert outcome.run_dir.name in after.reasons[0]


def test_data_fingerprint_check_uses_the_champions_lineage(settings: Settings) -> None:
    retrain(settings)
    registry = open_registry(settings)
    champion = registry.get(settings.model_name, "champion")
    due = retrain_due(settings, registry)
    assert due.champion_fingerprint == champion.data_fingerprint == due.data_fingerprint
    assert due.due is False


def test_a_run_evaluated_before_the_alarm_does_not_handle_it_whatever_its_name(
    settings: Settings, tmp_path: Path
) -> None:
    """Jenkins names run directories ``build-N``: evaluation times decide what came after an alarm, not names."""
    from diabetes_mlops.datasets import training_data
    from diabetes_mlops.pipelines import evaluate_step, register_step, train_step

    registry = open_registry(settings)
    run_dir = settings.runs_dir / "build-1"
    run_dir.mkdir(parents=True)
    train_step(settings, training_data(settings), run_dir)
    evaluate_step(settings, registry, run_dir)
    register_step(settings, registry, run_dir)
    alarm(settings, tmp_path)
    due = retrain_due(settings, registry)
    assert due.due and any("found drift in s5" in r for r in due.reasons)
    later = settings.runs_dir / "build-2"
    later.mkdir()
    train_step(settings, training_data(settings), later)
    evaluate_step(settings, registry, later)
    after = retrain_due(settings, registry)
    assert not after.due and "handled by run build-2" in after.reasons[0]


def test_a_run_trained_but_never_evaluated_does_not_count_as_tried(settings: Settings, tmp_path: Path) -> None:
    """New data stays due while the only run on it stopped after training (an evaluation decides, not a train)."""
    from diabetes_mlops.datasets import training_data
    from diabetes_mlops.pipelines import train_step
    from diabetes_mlops.runs import RunDir

    retrain(settings)
    batch = load_builtin().sample(40, random_state=2)
    batch["s3"] += 0.5
    batch.to_csv(tmp_path / "b.csv", index=False)
    ingest_file(settings, tmp_path / "b.csv")
    run_dir = RunDir.create(settings).path
    train_step(settings, training_data(settings), run_dir)
    assert (run_dir / "train.json").is_file() and not (run_dir / "evaluation.json").exists()
    due = retrain_due(settings, open_registry(settings))
    assert due.due and any("differs from champion version 1" in r for r in due.reasons)


def test_a_damaged_drift_verdict_is_a_clear_error(settings: Settings, cli: Callable[..., object]) -> None:
    retrain(settings)
    settings.drift_dir.mkdir(parents=True, exist_ok=True)
    (settings.drift_dir / "last.json").write_text('{"status": "dri')  # cut off mid-write by a full disk
    done = cli("retrain", "--if-due")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "last.json: not a drift verdict" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_damaged_run_neither_stops_the_check_nor_handles_an_alarm(settings: Settings, tmp_path: Path) -> None:
    """A run whose train.json was cut off mid-write cannot vouch for the data it trained on: it is skipped."""
    import shutil

    from diabetes_mlops.runs import RunDir

    retrain(settings)
    alarm(settings, tmp_path)
    shutil.rmtree(settings.runs_dir)  # the damaged run below is the only one
    run = RunDir.create(settings)
    run.train.write_text('{"data_fingerprint": "ab')
    run.evaluation.write_text("{}")  # evaluated after the alarm: it would handle it if it counted
    due = retrain_due(settings, open_registry(settings))
    verdict = Verdict.last(settings)
    assert verdict is not None and due.due
    assert due.reasons == [f"the drift report {verdict.id} found drift in {', '.join(verdict.drifted)}"]
