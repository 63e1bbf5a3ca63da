"""Nightly (timer-started) builds of the root Jenkinsfile: a drift report, then `train --if-due`; not due ends green."""

from __future__ import annotations

from typing import Any

import pytest
from jenkins_harness import BUILD_STAGES, RELEASE_STAGES, plan, running, stage

MAIN = {"TARGET": "local", "SKIP_APPROVAL": "true"}
DRIFT = "Retrain/Train#1"
TRAIN_IF_DUE = "Retrain/Train#2"


def train_commands(plan_: dict[str, Any]) -> list[dict[str, Any]]:
    """The sh steps of the Train stage, in order."""
    return [c for c in plan_["commands"] if c["stage"] == ["Retrain", "Train"]]


def test_a_nightly_main_build_reports_drift_then_trains_if_due() -> None:
    """Timer-started on main: Train runs `drift --since 24h` into the run directory, then `train --if-due`."""
    result = plan(params=MAIN, cause="timer")
    assert result["cause"] == "timer"
    drift, train = train_commands(result)
    assert [drift["id"], train["id"]] == [DRIFT, TRAIN_IF_DUE]
    assert drift["returnStatus"] and train["returnStatus"]
    assert 'diabetes-mlops drift --since "$MLOPS_DRIFT_SINCE" --out "$DIABETES_MLOPS_RUN_DIR/drift"' in drift["script"]
    assert drift["env"]["MLOPS_DRIFT_SINCE"] == "24h"
    assert train["script"].rstrip().endswith('diabetes-mlops train --if-due --target "$MLOPS_TARGET"')
    assert not drift["interpolated"] and not train["interpolated"]


def test_a_nightly_build_with_a_retrain_due_runs_everything() -> None:
    """Exit 0 of `train --if-due`: Evaluate, Register and Release run as on a push, and nothing is described."""
    result = plan(params=MAIN, cause="timer", statuses={TRAIN_IF_DUE: 0})
    assert running(result) == running(plan(params=MAIN))
    assert result["result"] == "SUCCESS" and result["description"] is None
    commands = [c["id"] for c in result["commands"]]
    assert commands.index(TRAIN_IF_DUE) < commands.index("Retrain/Evaluate#1") < commands.index("Release/Release QA#1")


def test_retrain_not_due_keeps_the_build_green_and_skips_evaluate_register_and_release() -> None:
    """Exit 3 of `train --if-due`: SUCCESS, "Retrain not due", and Evaluate, Register and all of Release skipped."""
    result = plan(params=MAIN, cause="timer", statuses={TRAIN_IF_DUE: 3})
    assert result["result"] == "SUCCESS"
    assert result["description"].startswith("Retrain not due")
    build = ["Build"] + [f"Build/{name}" for name in BUILD_STAGES]
    assert running(result) == [*build, "Retrain", "Retrain/Train"]
    for path in ["Retrain/Evaluate", "Retrain/Register", "Release"]:
        assert stage(result, path)["skipped"] == "when", path
    assert all(stage(result, f"Release/{name}")["skipped"] == "when" for name in RELEASE_STAGES)
    assert [c["id"] for c in result["commands"] if c["stage"][0] != "Build"] == [DRIFT, TRAIN_IF_DUE]


def test_drift_is_recorded_in_the_description_and_is_not_a_failure() -> None:
    """Exit 4 of the drift report: the build goes on (train --if-due retrains) and its description says drift."""
    result = plan(params=MAIN, cause="timer", statuses={DRIFT: 4})
    assert result["result"] == "SUCCESS"
    assert result["description"].startswith("Drift in the scoring logs of the last 24h")
    assert "Release/Release production" in running(result)
    kept = plan(params=MAIN, cause="timer", statuses={DRIFT: 4, "Retrain/Evaluate#1": 3})
    assert kept["result"] == "SUCCESS" and kept["description"].startswith("Drift")
    assert "; Champion kept" in kept["description"] and not stage(kept, "Release")["runs"]


@pytest.mark.parametrize(("failing", "commands_in_train"), [(DRIFT, 1), (TRAIN_IF_DUE, 2)])
def test_a_failing_drift_report_or_train_if_due_fails_the_build(failing: str, commands_in_train: int) -> None:
    """Another exit code of either command fails the build there; Evaluate and later stages do not run."""
    result = plan(params=MAIN, cause="timer", statuses={failing: 1})
    assert result["result"] == "FAILURE"
    assert "exit code 1" in stage(result, "Retrain/Train")["error"]
    assert len(train_commands(result)) == commands_in_train
    assert stage(result, "Retrain/Evaluate")["skipped"] == "earlier failure"


@pytest.mark.parametrize("cause", ["scm", "user", "upstream"])
def test_builds_the_timer_did_not_start_train_unconditionally(cause: str) -> None:
    """A push, a manual or an upstream build trains as ever: one plain `train`, no drift report, no --if-due."""
    result = plan(params=MAIN, cause=cause)
    [train] = train_commands(result)
    assert train["id"] == "Retrain/Train#1" and not train["returnStatus"]
    assert train["script"].rstrip().endswith('diabetes-mlops train --target "$MLOPS_TARGET"')
    assert not [c["id"] for c in result["commands"] if "drift" in c["script"] or "--if-due" in c["script"]]


def test_force_retrain_on_a_nightly_build_trains_unconditionally() -> None:
    """FORCE_RETRAIN=true on a timer-started build: plain `train`, no drift report, and the rest runs."""
    result = plan(params={**MAIN, "FORCE_RETRAIN": "true"}, cause="timer")
    [train] = train_commands(result)
    assert train["script"].rstrip().endswith('diabetes-mlops train --target "$MLOPS_TARGET"')
    assert not train["returnStatus"]
    assert running(result) == running(plan(params=MAIN))


def test_nightly_exit_codes_are_recorded_for_drift_and_train_if_due() -> None:
    """On a nightly build drift and train --if-due join Evaluate, Register and the QA tidy-up in using returnStatus."""
    commands = plan(params=MAIN, cause="timer")["commands"]
    with_status = [c["id"] for c in commands if c["returnStatus"]]
    assert with_status == [
        DRIFT,
        TRAIN_IF_DUE,
        "Retrain/Evaluate#1",
        "Retrain/Register#1",
        "Release/Release QA/post:cleanup#1",
    ]


def test_nightly_azure_binds_credentials_for_drift_and_train_if_due_only() -> None:
    """Nightly target azure (a setting, not TARGET): drift and train --if-due read the champion, so they get them."""
    result = plan(params={"SKIP_APPROVAL": "true"}, env={"DIABETES_MLOPS_NIGHTLY_TARGET": "azure"}, cause="timer")
    bound = {c["id"] for c in result["commands"] if "AZURE_CLIENT_SECRET" in c["env"]}
    assert {DRIFT, TRAIN_IF_DUE, "Retrain/Evaluate#1"} <= bound
    assert not {c["id"] for c in result["commands"] if c["stage"][0] == "Build"} & bound
    for command in train_commands(result):
        assert command["env"]["DIABETES_MLOPS_REGISTRY_BACKEND"] == "azureml"
        assert "@@secret" not in command["script"]


def test_the_evaluate_stage_states_its_condition() -> None:
    """Evaluate's `when` shows the recorded result it depends on; on a push it runs."""
    evaluate = stage(plan(params=MAIN), "Retrain/Evaluate")
    assert evaluate["runs"] and "env.CHAMPION_KEPT != 'true'" in evaluate["when"]
