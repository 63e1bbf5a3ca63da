"""The CLI end to end in a temporary home, as a user runs it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from diabetes_mlops.data import load_builtin

Cli = Callable[..., object]


def test_first_run_registers_v1_and_second_keeps_it(cli: Cli, home: Path) -> None:
    first = cli("run")
    assert first.returncode == 0, first.stderr
    assert "registered diabetes version 1 as champion" in first.stdout
    assert "r2=" in first.stdout and "model_card.md" in first.stdout
    url = f"http://127.0.0.1:{os.environ['DIABETES_MLOPS_PRODUCTION_PORT']}"
    assert f"production serves diabetes:1 at {url}" in first.stdout and "curl -s -X POST" in first.stdout
    assert cli("smoke-test", url, "--expect-version", "1").returncode == 0
    second = cli("run")
    assert second.returncode == 0, second.stderr
    assert "champion kept (version 1)" in second.stdout
    assert "already, nothing to release" in second.stdout
    endpoints = json.loads(cli("--json", "endpoints").stdout)["endpoints"]
    assert [(e["env"], e["version"], e["healthy"]) for e in endpoints] == [("production", 1, True)]
    listing = json.loads(cli("--json", "models", "list").stdout)
    assert [v["version"] for v in listing["versions"]] == [1]
    assert listing["aliases"]["champion"] == 1
    runs = sorted((home / "runs").iterdir())
    assert len(runs) == 2
    for name in ("evaluation.json", "model_card.md", "predicted_vs_actual.png", "residuals.png"):
        assert (runs[0] / name).is_file(), name


def test_retrain_exits_3_when_the_champion_is_kept(cli: Cli) -> None:
    assert cli("retrain").returncode == 0
    kept = cli("--json", "retrain")
    assert kept.returncode == 3
    assert json.loads(kept.stdout)["kept_champion"] is True


def test_step_by_step_as_jenkins_runs_it(cli: Cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {"DIABETES_MLOPS_RUN_DIR": str(run_dir)}
    assert cli("train", env=env).returncode == 0
    assert cli("evaluate", env=env).returncode == 0
    registered = cli("--json", "register", env=env)
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["version"] == 1
    # Registering the same run again is a no-op that returns the same version.
    again = cli("--json", "register", env=env)
    assert json.loads(again.stdout)["version"] == 1
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["decision"]["promote"] is True and evaluation["champion"] is None


def test_a_better_challenger_replaces_the_champion(cli: Cli, tmp_path: Path) -> None:
    assert cli("run").returncode == 0
    # On the same test split, alpha 1000 over-regularises (MSE ~3450) and alpha 50 beats alpha 1 (~2856 < ~2892).
    path = tmp_path / "same.csv"
    load_builtin().to_csv(path, index=False)
    worse = cli("--json", "retrain", "--data", str(path), env={"DIABETES_MLOPS_ALPHA": "1000"})
    assert worse.returncode == 3
    better = cli("--json", "retrain", "--data", str(path), env={"DIABETES_MLOPS_ALPHA": "50"})
    outcome = json.loads(better.stdout)
    assert better.returncode == 0, better.stderr
    assert outcome["registered_version"] == 2 and outcome["champion_version"] == 1
    show = json.loads(cli("--json", "models", "show", "champion").stdout)
    assert show["version"] == 2 and show["replaced"] == 1 and show["params"]["alpha"] == 50


def test_promote_and_rollback_from_the_cli(cli: Cli) -> None:
    assert cli("run").returncode == 0
    assert cli("promote", "diabetes:1", "--alias", "production").returncode == 0
    failed = cli("rollback")
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: alias 'production'") and "Traceback" not in failed.stderr


def test_bad_settings_are_usage_errors(cli: Cli) -> None:
    result = cli("run", env={"DIABETES_MLOPS_R2_FLOOR": "high"})
    assert result.returncode == 2
    assert "'r2_floor'" in result.stderr and "Traceback" not in result.stderr


def test_serve_takes_only_what_a_user_sets(cli: Cli, tmp_path: Path) -> None:
    """The supervisor's socket and ready-file flags belong to its own server process, not to the public verb."""
    for flag in (["--fd", "3"], ["--ready-file", str(tmp_path / "ready")]):
        done = cli("serve", *flag)
        assert done.returncode == 2 and f"No such option '{flag[0]}'" in done.stderr
