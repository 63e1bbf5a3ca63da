"""What a real Jenkins does that a plan must respect: stale reports, agents and waits, nightly policy, PR safety."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jenkins_harness import LIBRARY, ROOT, HarnessError, plan, running, stage, steps_named

MAIN = {"TARGET": "local", "SKIP_APPROVAL": "true"}
AZURE = {"TARGET": "azure", "FORCE_RETRAIN": "true", "SKIP_APPROVAL": "true"}
DOCS = ROOT / "docs" / "jenkins.md"


def jenkinsfile(tmp_path: Path, body: str) -> Path:
    """A Jenkinsfile loading the library, with ``body`` as its script."""
    path = tmp_path / "Jenkinsfile"
    path.write_text(f"@Library('diabetes-mlops') _\n{body}\n")
    return path


# 2. stale reports


def test_setup_empties_the_reports_and_post_publishes_only_this_builds_reports() -> None:
    """Setup removes the report folder first; junit skips old reports; coverage is recorded for failed builds too."""
    result = plan(params=MAIN)
    [setup] = [c for c in result["commands"] if c["id"] == "Build/Setup#1"]
    assert 'rm -rf "$reports"' in setup["script"] and setup["env"]["MLOPS_REPORTS"] == "reports"
    [junit] = steps_named(result, "junit")
    assert junit["skipOldReports"] is True and junit["testResults"] == "reports/junit-*.xml"
    [coverage] = steps_named(result, "recordCoverage")
    assert coverage["enabledForFailure"] is True


def test_a_failed_setup_still_publishes_with_the_same_guards() -> None:
    """When Setup fails, the Build stage's post still runs junit with skipOldReports on the same agent."""
    result = plan(params=MAIN, statuses={"Build/Setup#1": 1})
    assert result["result"] == "FAILURE"
    [junit] = steps_named(result, "junit")
    assert junit["skipOldReports"] is True


# 3. nightly builds never wait; approval is a stage-level input outside any agent; milestones


def test_the_approval_is_a_stage_input_that_holds_no_executor() -> None:
    """Top-level agent none; Approve production asks a stage-level input within its timeout before any agent."""
    result = plan(params={"TARGET": "local"})
    assert result["agent"] == {"kind": "none"}
    approve = stage(result, "Release/Approve production")
    assert approve["runs"] and approve["agent"] is None
    assert approve["input"]["ok"] == "Deploy to production" and approve["input"]["agentHeld"] is False
    assert approve["input"]["within"] == ["timeout(time: 8, unit: 'HOURS')"]
    assert not [entry for entry in approve["steps"] if entry["step"] == "input"]
    assert all(command["agent"] is not None for command in result["commands"])


def test_skip_approval_asks_nothing() -> None:
    """SKIP_APPROVAL: the when is evaluated before the input (beforeInput), so nobody is asked."""
    approve = stage(plan(params=MAIN), "Release/Approve production")
    assert not approve["runs"] and "input" not in approve


def test_milestones_keep_an_older_build_from_releasing_over_a_newer_one() -> None:
    """Release QA passes milestone 1 and Release production milestone 2, each before its release command."""
    result = plan(params=MAIN)
    for path, ordinal in [("Release/Release QA", 1), ("Release/Release production", 2)]:
        steps = stage(result, path)["steps"]
        assert steps[0]["step"] == "milestone" and steps[0]["ordinal"] == ordinal, path
        assert steps[1]["step"] == "sh"


@pytest.mark.parametrize(
    ("env", "target", "production"),
    [
        ({}, "local", True),
        ({"DIABETES_MLOPS_NIGHTLY_TARGET": "azure"}, "azure", True),
        ({"DIABETES_MLOPS_NIGHTLY_APPROVAL": "qa"}, "local", False),
    ],
)
def test_a_nightly_build_takes_target_and_approval_from_settings(env: dict, target: str, production: bool) -> None:
    """Timer builds ignore the parameter defaults: target and approval policy come from the settings, never a wait."""
    result = plan(params={}, env=env, cause="timer", statuses={"Retrain/Train#2": 0})
    assert not stage(result, "Release/Approve production")["runs"]
    assert "input" not in stage(result, "Release/Approve production")
    releases = [c for c in result["commands"] if c["stage"][0] == "Release"]
    assert {c["env"]["MLOPS_TARGET"] for c in releases} == {target}
    assert ("Release/Release production" in running(result)) is production


def test_the_library_pipeline_takes_the_nightly_policy_and_refuses_a_waiting_one(tmp_path: Path) -> None:
    """nightlyTarget and nightlyApproval are settings of diabetesMlopsPipeline; 'wait' is not a nightly policy."""
    path = jenkinsfile(tmp_path, "diabetesMlopsPipeline(nightlyTarget: 'azure', nightlyApproval: 'qa')")
    result = plan(path, params={}, cause="timer", statuses={"Retrain/Train#2": 0})
    assert "Release/Release production" not in running(result)
    assert stage(result, "Release/Release QA")["steps"][1]["env"]["MLOPS_TARGET"] == "azure"
    refused = jenkinsfile(tmp_path, "diabetesMlopsPipeline(nightlyApproval: 'wait')")
    with pytest.raises(HarnessError) as caught:
        plan(refused, params={})
    assert "nightlyApproval must be one of [skip, qa]" in caught.value.stderr


# 4. which agent holds the registry


def test_every_stage_that_runs_commands_holds_the_pinned_agent_and_the_home_is_outside_the_workspace() -> None:
    """With an agent label set, every command runs on that label; the home is the agent's, not the workspace's."""
    result = plan(params=MAIN, env={"DIABETES_MLOPS_AGENT_LABEL": "mlops"})
    assert {command["agent"]["label"] for command in result["commands"]} == {"mlops"}
    assert all("DIABETES_MLOPS_HOME" not in command["env"] for command in result["commands"])
    prelude = (LIBRARY / "resources/org/diabetesmlops/jenkins/prelude.sh").read_text()
    assert 'DIABETES_MLOPS_HOME="${DIABETES_MLOPS_HOME:-$HOME/.diabetes-mlops/${JOB_NAME:-' in prelude


# 5. credentials and untrusted code


@pytest.mark.parametrize(("branch", "env"), [("PR-7", {"CHANGE_ID": "7", "CHANGE_TARGET": "main"}), ("feature/x", {})])
def test_branch_and_pull_request_builds_never_bind_azure_credentials(branch: str, env: dict) -> None:
    """FORCE_RETRAIN with TARGET=azure on a branch or PR: no command runs inside withCredentials; the build says why."""
    result = plan(branch=branch, env=env, params=AZURE)
    assert not [c["id"] for c in result["commands"] if any("withCredentials" in w for w in c["within"])]
    assert not [c["id"] for c in result["commands"] if "AZURE_CLIENT_SECRET" in c["env"]]
    assert result["result"] == "FAILURE"
    assert "Azure credentials are bound only on builds of main" in stage(result, "Retrain/Train")["error"]


def test_a_user_error_in_the_library_is_an_error_step_not_an_exception(tmp_path: Path) -> None:
    """A misspelt key inside a stage fails that stage with error() and its message (the sandbox allows error())."""
    body = """
pipeline {
    agent any
    stages {
        stage('Typo') {
            steps { mlopsSh(scrpt: 'diabetes-mlops models list') }
        }
    }
}"""
    result = plan(jenkinsfile(tmp_path, body))
    typo = stage(result, "Typo")
    assert result["result"] == "FAILURE" and "unknown setting(s) [scrpt]" in typo["error"]
    assert typo["steps"][-1]["step"] == "error"
    for source in sorted(LIBRARY.rglob("*.groovy")):
        assert not re.search(r"\bthrow new\b", source.read_text()), source


def test_the_docs_list_the_plugins_and_do_not_advise_overriding_a_trusted_library() -> None:
    """docs/jenkins.md names the plugins used, what a PR changing jenkins/ gets, and gives no override advice."""
    text = DOCS.read_text()
    for plugin in [
        "Pipeline: Declarative",
        "Pipeline: Input Step",
        "Pipeline: Milestone Step",
        "Azure Credentials",
        "Credentials Binding",
        "JUnit",
        "Coverage",
        "Timestamper",
        "Branch API",
    ]:
        assert plugin in text, plugin
    assert 'Tick "Allow default version to be overridden"' not in text
    assert 'Leave "Allow default version to be overridden" unticked' in text
    assert re.search(r"pull request that changes `jenkins/`", text)


# 6. the harness models Jenkins, not a looser DSL


def test_env_assignment_does_not_override_a_declared_environment_variable(tmp_path: Path) -> None:
    """env.X = ... from a script loses to environment {}; an undeclared name takes the script's value."""
    body = """
pipeline {
    agent any
    environment { DECLARED = 'from-environment' }
    stages {
        stage('Set') {
            steps {
                script {
                    env.DECLARED = 'from-script'
                    env.FREE = 'from-script'
                }
            }
        }
        stage('Read') {
            when { environment name: 'DECLARED', value: 'from-environment' }
            steps { sh 'true' }
        }
    }
}"""
    [command] = plan(jenkinsfile(tmp_path, body))["commands"]
    assert command["env"]["DECLARED"] == "from-environment" and command["env"]["FREE"] == "from-script"


@pytest.mark.parametrize(
    ("call", "accepted"),
    [
        ("junit(testResults: 'r/*.xml', skipOldReports: true, keepProperties: true, healthScaleFactor: 1.0)", True),
        ("recordCoverage(tools: [[parser: 'COBERTURA', pattern: 'c.xml']], enabledForFailure: true)", True),
        ("junit(testResults: 'r/*.xml', skipOldReport: true)", False),
        ("milestone(ordinal: 2, label: 'b'); milestone(ordinal: 1, label: 'a')", False),
        ("sh 'true'", False),
    ],
)
def test_the_harness_takes_the_plugins_parameter_names_and_rules(tmp_path: Path, call: str, accepted: bool) -> None:
    """Real parameter names pass, a misspelt one does not; milestone ordinals rise; sh needs an agent."""
    agent = "none" if call == "sh 'true'" else "any"
    body = f"pipeline {{\n agent {agent}\n stages {{ stage('S') {{ steps {{ {call} }} }} }}\n}}"
    path = jenkinsfile(tmp_path, body)
    if accepted:
        assert stage(plan(path), "S")["result"] == "SUCCESS"
    else:
        with pytest.raises(HarnessError):
            plan(path)
