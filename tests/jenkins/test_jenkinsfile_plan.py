"""The root Jenkinsfile, evaluated by the Groovy harness with the shared library loaded: stages, conditions, steps."""

from __future__ import annotations

from pathlib import Path

import pytest
from jenkins_harness import (
    BUILD_STAGES,
    JENKINSFILE,
    RELEASE_STAGES,
    STAGE_TREE,
    HarnessError,
    plan,
    running,
    stage,
    stage_tree,
    stages,
    steps_named,
)

MAIN = {"TARGET": "local", "SKIP_APPROVAL": "true"}
BUILD_ONLY = ["Build"] + [f"Build/{name}" for name in BUILD_STAGES]


def assert_stage_tree(plan_: dict) -> None:
    """The stages are exactly Build, Retrain, Release with their children, named and ordered as documented."""
    assert stage_tree(plan_) == STAGE_TREE


def test_stages_are_named_and_ordered_as_documented() -> None:
    """The stage tree of a main build is Build, Retrain, Release with their children in order."""
    assert_stage_tree(plan(params=MAIN))


def test_main_runs_every_stage_and_skips_only_the_approval_when_asked() -> None:
    """On main with SKIP_APPROVAL every stage runs except Approve production, and each runs its CLI verb."""
    result = plan(params=MAIN)
    all_paths = [found["path"] for found in stages(result["stages"])]
    assert [p for p in all_paths if p not in running(result)] == ["Release/Approve production"]
    assert result["result"] == "SUCCESS"
    verbs = {
        "Retrain/Train": "diabetes-mlops train",
        "Retrain/Evaluate": "diabetes-mlops evaluate",
        "Retrain/Register": "diabetes-mlops register",
        "Release/Release QA": 'diabetes-mlops release --stage "$MLOPS_STAGE"',
        "Release/Release production": 'diabetes-mlops release --stage "$MLOPS_STAGE"',
    }
    for path, verb in verbs.items():
        scripts = [entry["script"] for entry in stage(result, path)["steps"] if entry["step"] == "sh"]
        assert len(scripts) == 1 and verb in scripts[0], path


def test_approval_waits_for_input_with_a_timeout_on_main() -> None:
    """Without SKIP_APPROVAL, Approve production runs on main: a stage-level input inside an 8-hour timeout."""
    approve = stage(plan(params={"TARGET": "local"}), "Release/Approve production")
    assert approve["runs"] and "SKIP_APPROVAL" in approve["when"] and "triggeredBy 'TimerTrigger'" in approve["when"]
    assert approve["whenFlags"] == {"beforeInput": True}
    assert approve["input"]["ok"] == "Deploy to production" and approve["input"]["submitterParameter"] == "APPROVER"
    assert approve["input"]["within"] == ["timeout(time: 8, unit: 'HOURS')"]
    assert approve["steps"] == [{"step": "echo", "message": "Production release approved by approver"}]


@pytest.mark.parametrize("branch", ["feature/faster-training", "PR-7"])
def test_other_branches_and_pull_requests_run_build_only(branch: str) -> None:
    """A feature branch or a pull request runs Build and its four stages, nothing else, and no nightly cron."""
    env = {"CHANGE_ID": "7", "CHANGE_TARGET": "main"} if branch.startswith("PR-") else {}
    result = plan(branch=branch, env=env, params={"SKIP_APPROVAL": "true"})
    assert running(result) == BUILD_ONLY
    assert {tuple(c["stage"][:1]) for c in result["commands"]} == {("Build",)}
    assert result["triggers"] == [{"name": "cron", "spec": ""}]
    assert stage(result, "Release/Release QA")["skipped"] == "when"


def test_force_retrain_on_a_branch_trains_and_evaluates_but_registers_and_releases_nothing() -> None:
    """FORCE_RETRAIN on a branch adds Train and Evaluate only: Register and Release stay main-only."""
    result = plan(branch="feature/x", params={"FORCE_RETRAIN": "true"})
    assert running(result) == [*BUILD_ONLY, "Retrain", "Retrain/Train", "Retrain/Evaluate"]


def test_champion_kept_by_evaluate_keeps_the_build_green_and_skips_register_and_release() -> None:
    """Exit code 3 of evaluate: SUCCESS, a description saying so, Register and all of Release skipped."""
    result = plan(params=MAIN, statuses={"Retrain/Evaluate#1": 3})
    assert result["result"] == "SUCCESS"
    assert result["description"].startswith("Champion kept")
    assert stage(result, "Retrain/Register")["skipped"] == "when"
    assert stage(result, "Release")["skipped"] == "when"
    assert all(not stage(result, f"Release/{name}")["runs"] for name in RELEASE_STAGES)
    assert [c["id"] for c in result["commands"]][-1] == "Retrain/Evaluate#1"


def test_champion_kept_by_register_skips_release() -> None:
    """Exit code 3 of register (nothing registered) also skips Release and keeps the build green."""
    result = plan(params=MAIN, statuses={"Retrain/Register#1": 3})
    assert result["result"] == "SUCCESS" and "register" in result["description"]
    assert not stage(result, "Release")["runs"]


def test_a_failing_evaluate_fails_the_build_but_post_still_publishes() -> None:
    """Another exit code of evaluate fails the build; later stages are skipped; Build's and Retrain's post run."""
    result = plan(params=MAIN, statuses={"Retrain/Evaluate#1": 1})
    assert result["result"] == "FAILURE"
    assert "exit code 1" in stage(result, "Retrain/Evaluate")["error"]
    assert stage(result, "Release")["skipped"] == "earlier failure"
    assert [block["condition"] for block in stage(result, "Retrain")["post"] if block["runs"]] == ["always"]
    assert len(steps_named(result, "junit")) == 1


def test_a_failing_build_stage_skips_everything_after_it() -> None:
    """A failing unit-test run stops the build there: Data tests, Retrain and Release do not run."""
    result = plan(params=MAIN, statuses={"Build/Unit tests#1": 1})
    assert running(result) == ["Build", "Build/Setup", "Build/Code quality", "Build/Unit tests"]
    assert result["result"] == "FAILURE"


def test_exit_codes_are_recorded_only_where_champion_kept_is_possible() -> None:
    """Evaluate, Register and the QA tidy-up use returnStatus; every other sh must succeed."""
    commands = plan(params=MAIN)["commands"]
    with_status = [c["id"] for c in commands if c["returnStatus"]]
    assert with_status == ["Retrain/Evaluate#1", "Retrain/Register#1", "Release/Release QA/post:cleanup#1"]


def test_options_triggers_and_parameters() -> None:
    """timeout, timestamps, disableConcurrentBuilds and buildDiscarder; a nightly cron on main; three parameters."""
    result = plan(params=MAIN)
    assert [o["name"] for o in result["options"]] == [
        "timeout",
        "timestamps",
        "disableConcurrentBuilds",
        "buildDiscarder",
    ]
    assert result["triggers"] == [{"name": "cron", "spec": "H 2 * * *"}]
    parameters = {p["name"]: p for p in result["parameters"]}
    assert parameters["TARGET"]["type"] == "choice" and parameters["TARGET"]["choices"] == ["local", "azure"]
    assert parameters["FORCE_RETRAIN"] == {**parameters["FORCE_RETRAIN"], "type": "booleanParam", "default": False}
    assert parameters["SKIP_APPROVAL"] == {**parameters["SKIP_APPROVAL"], "type": "booleanParam", "default": False}
    assert result["libraries"] == ["diabetes-mlops"]


def test_every_command_sees_the_jenkins_and_pipeline_environment(tmp_path: Path) -> None:
    """Each sh sees WORKSPACE, BUILD_TAG and the stage name; home and run directory are left to the prelude."""
    result = plan(params=MAIN, workspace=tmp_path, build_number=12, job_name="mlops/main", git_commit="ab" * 20)
    for command in result["commands"]:
        env = command["env"]
        assert env["WORKSPACE"] == str(tmp_path) and env["BRANCH_NAME"] == "main"
        assert env["BUILD_NUMBER"] == "12" and env["BUILD_TAG"] == "jenkins-mlops-main-12"
        assert env["GIT_COMMIT"] == "ab" * 20
        assert "DIABETES_MLOPS_HOME" not in env and "DIABETES_MLOPS_RUN_DIR" not in env
        assert env["MLOPS_BUILD_TARGET"] == "local" and env["MLOPS_MAIN_BRANCH"] == "main"
    assert [c["env"]["STAGE_NAME"] for c in result["commands"][:2]] == ["Setup", "Code quality"]


def test_unit_and_data_tests_write_junit_and_coverage_and_honour_the_selection_variables() -> None:
    """Unit tests: pytest on ${PYTEST_ARGS:-tests} with JUnit and Cobertura XML; data tests: validate-data too."""
    result = plan(params=MAIN)
    [unit] = [c["script"] for c in result["commands"] if c["id"] == "Build/Unit tests#1"]
    assert "${PYTEST_ARGS:-tests}" in unit and '--junitxml="$MLOPS_REPORTS/junit-unit.xml"' in unit
    assert '--cov-report=xml:"$MLOPS_REPORTS/coverage.xml"' in unit
    [data] = [c["script"] for c in result["commands"] if c["id"] == "Build/Data tests#1"]
    assert "diabetes-mlops validate-data" in data and "${DATA_TEST_ARGS:-tests/test_schema.py}" in data
    [setup] = [c for c in result["commands"] if c["id"] == "Build/Setup#1"]
    assert "${VENV_ARGS:-}" in setup["script"] and "pip install" in setup["script"]


def test_post_publishes_tests_coverage_and_the_run_directory_then_undeploys_qa() -> None:
    """Build's post: junit, Cobertura coverage, the reports; Retrain's and the releases': the run directory;
    Release QA's cleanup: undeploy qa."""
    result = plan(params=MAIN, build_number=5)
    [junit] = steps_named(result, "junit")
    assert junit["testResults"] == "reports/junit-*.xml"
    [coverage] = steps_named(result, "recordCoverage")
    assert coverage["tools"] == [{"parser": "COBERTURA", "pattern": "reports/coverage.xml"}]
    archives = [archive["artifacts"] for archive in steps_named(result, "archiveArtifacts")]
    assert archives == ["reports/**"] + [".mlops/runs/build-5/**"] * 3
    cleanup = next(block for block in stage(result, "Release/Release QA")["post"] if block["condition"] == "cleanup")
    assert "diabetes-mlops undeploy qa" in cleanup["steps"][0]["script"]


def test_azure_credentials_are_bound_only_around_the_commands_that_need_them() -> None:
    """TARGET=azure: Train (an Azure ML job), Evaluate, Register and Release run inside withCredentials; Build and
    Release QA's tidy-up never do."""
    result = plan(params={"TARGET": "azure", "SKIP_APPROVAL": "true"})
    bound = {c["id"] for c in result["commands"] if "AZURE_CLIENT_SECRET" in c["env"]}
    wrapped = {c["id"] for c in result["commands"] if any("azureServicePrincipal" in w for w in c["within"])}
    expected = {"Retrain/Train#1", "Retrain/Evaluate#1", "Retrain/Register#1"} | {
        f"Release/{name}#1" for name in RELEASE_STAGES if name != "Approve production"
    }
    assert bound == wrapped == expected
    key = "DIABETES_MLOPS_SCORING_KEY"
    keyed = {c["id"] for c in result["commands"] if c["env"].get(key, "").startswith("@@secret")}
    assert keyed == expected  # the public endpoints' key, from Jenkins' store with the service principal
    for command in result["commands"]:
        assert "@@secret" not in command["script"]
        if command["stage"][0] in ("Retrain", "Release"):
            assert command["env"]["MLOPS_TARGET"] == "azure", command["id"]
    registry = {c["id"]: c["env"].get("DIABETES_MLOPS_REGISTRY_BACKEND") for c in result["commands"]}
    assert registry["Retrain/Register#1"] == "azureml"


def test_local_target_binds_no_credentials_and_no_script_is_interpolated() -> None:
    """TARGET=local binds nothing; every sh script is a plain (single-quoted) string."""
    result = plan(params=MAIN)
    assert not [c for c in result["commands"] if any("withCredentials" in w for w in c["within"])]
    assert not [c["id"] for c in result["commands"] if c["interpolated"]]


def test_a_parameter_value_outside_the_choices_is_refused() -> None:
    """TARGET=gcp is not a choice: the harness refuses it, naming the choices."""
    with pytest.raises(HarnessError) as caught:
        plan(params={"TARGET": "gcp"})
    assert caught.value.returncode == 2 and "[local, azure]" in caught.value.stderr


def test_a_status_for_a_step_that_does_not_exist_is_refused() -> None:
    """--status with an id no sh step has is a mistake of the test, reported loudly."""
    with pytest.raises(HarnessError) as caught:
        plan(params=MAIN, statuses={"Retrain/Evaluat#1": 3})
    assert "Retrain/Evaluat#1" in caught.value.stderr


def test_with_the_keys_in_key_vault_no_scoring_key_credential_is_bound(tmp_path: Path) -> None:
    """``scoringKeyCredentialsId: ''`` (the keys are in Key Vault): the service principal alone is bound."""
    copy = tmp_path / "Jenkinsfile"
    text = JENKINSFILE.read_text()
    for task in ("qa", "production"):
        call = f"mlopsRelease(task: '{task}', target: env.MLOPS_BUILD_TARGET)"
        assert call in text
        text = text.replace(call, call[:-1] + ", scoringKeyCredentialsId: '')")
    copy.write_text(text)
    result = plan(copy, params={"TARGET": "azure", "SKIP_APPROVAL": "true"})
    released = [c for c in result["commands"] if c["id"] in ("Release/Release QA#1", "Release/Release production#1")]
    assert len(released) == 2
    for command in released:
        assert command["env"]["AZURE_CLIENT_SECRET"].startswith("@@secret")
        assert "DIABETES_MLOPS_SCORING_KEY" not in command["env"], command["id"]
