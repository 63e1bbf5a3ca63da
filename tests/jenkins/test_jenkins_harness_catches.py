"""The harness fails loudly on a broken Jenkinsfile or library: misspelt steps, lost stages, leaked secrets."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from jenkins_harness import JENKINSFILE, LIBRARY, STAGE_TREE, HarnessError, plan, stage_tree, stages

MAIN = {"TARGET": "local", "SKIP_APPROVAL": "true"}


def mutated(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the Jenkinsfile with ``old`` (which must occur once) replaced by ``new``."""
    text = JENKINSFILE.read_text()
    assert text.count(old) == 1, old
    copy = tmp_path / "Jenkinsfile"
    copy.write_text(text.replace(old, new))
    return copy


def refused(jenkinsfile: Path, **kwargs: object) -> str:
    """The harness's message for a Jenkinsfile it must refuse (exit code 2)."""
    with pytest.raises(HarnessError) as caught:
        plan(jenkinsfile, params=MAIN, **kwargs)
    assert caught.value.returncode == 2
    return caught.value.stderr


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("junit(testResults", "junti(testResults", "unknown step 'junti'"),
        ("mlopsBuild(task: 'unitTests')", "mlopsBiuld(task: 'unitTests')", "unknown step 'mlopsBiuld'"),
        ("timestamps()", "timestamp()", "unknown directive 'timestamp'"),
        ("params.SKIP_APPROVAL", "params.SKIP_APROVAL", "params.SKIP_APROVAL"),
        ("cleanup {", "cleanpu {", "unknown post condition 'cleanpu'"),
    ],
)
def test_a_misspelt_step_directive_or_setting_fails_the_harness(tmp_path: Path, old: str, new: str, named: str) -> None:
    """A typo anywhere in the Jenkinsfile makes the harness exit 2 with a message naming it."""
    assert named in refused(mutated(tmp_path, old, new))


@pytest.mark.parametrize(
    ("new", "named"),
    [
        ("mlopsBuild(task: 'setup', pytestArg: 'tests')", "unknown setting(s) [pytestArg]"),
        ("mlopsBuild(task: 'stup')", "task must be one of [setup, codeQuality, unitTests, dataTests, all]"),
    ],
)
def test_a_misspelt_library_setting_fails_the_build_with_error_naming_it(tmp_path: Path, new: str, named: str) -> None:
    """A bad key or value of a library step is a user error: the stage fails through error() with the message."""
    result = plan(mutated(tmp_path, "mlopsBuild(task: 'setup')", new), params=MAIN)
    setup = next(s for s in stages(result["stages"]) if s["path"] == "Build/Setup")
    assert result["result"] == "FAILURE" and named in setup["error"]
    assert setup["steps"] == [{"step": "error", "message": setup["error"]}]


def test_a_misspelt_step_parameter_inside_the_library_fails_the_harness(tmp_path: Path) -> None:
    """The library's vars/ are evaluated too: a typo in a step's parameter there is caught."""
    library = tmp_path / "jenkins"
    shutil.copytree(LIBRARY, library)
    var = library / "vars" / "mlopsSh.groovy"
    var.write_text(var.read_text().replace("returnStatus: cfg.returnStatus", "retrunStatus: cfg.returnStatus"))
    message = refused(JENKINSFILE, library=library)
    assert "sh has no parameter 'retrunStatus'" in message


def test_a_removed_stage_is_caught_by_the_stage_order_check(tmp_path: Path) -> None:
    """Without the Release QA stage the plan still evaluates, but its stage tree no longer matches."""
    text = JENKINSFILE.read_text()
    block = re.search(r"\n *stage\('Release QA'\) \{\n.*?\n(?= *stage\('Approve production'\))", text, re.S)
    assert block is not None
    copy = tmp_path / "Jenkinsfile"
    copy.write_text(text.replace(block.group(0), "\n"))
    tree = stage_tree(plan(copy, params=MAIN))
    assert tree != STAGE_TREE
    assert "Release QA" not in dict(tree)["Release"]


def test_swapped_stages_are_caught_by_the_stage_order_check(tmp_path: Path) -> None:
    """Release production before Release QA changes the order the check compares."""
    copy = mutated(tmp_path, "stage('Release QA')", "stage('Release production_')")
    text = copy.read_text().replace("stage('Release production')", "stage('Release QA')")
    copy.write_text(text.replace("stage('Release production_')", "stage('Release production')"))
    assert stage_tree(plan(copy, params=MAIN)) != STAGE_TREE


def test_a_secret_interpolated_into_a_groovy_string_fails_the_harness(tmp_path: Path) -> None:
    """sh "...${env.AZURE_CLIENT_SECRET}" inside withCredentials is refused: secrets go through the environment."""
    leak = (
        "steps { withCredentials([azureServicePrincipal(credentialsId: 'azure-service-principal')]) "
        '{ sh "az login --password ${env.AZURE_CLIENT_SECRET}" } }'
    )
    copy = mutated(tmp_path, "steps { mlopsRetrain(task: 'evaluate', target: env.MLOPS_BUILD_TARGET) }", leak)
    assert "credential is interpolated" in refused(copy)


def test_a_step_outside_the_declarative_sections_is_refused(tmp_path: Path) -> None:
    """sh directly in a stage (not in steps) is not declarative syntax: unknown directive."""
    copy = mutated(tmp_path, "steps { mlopsBuild(task: 'codeQuality') }", "sh 'ruff check .'")
    assert "unknown directive 'sh'" in refused(copy)


def test_a_stage_without_steps_or_stages_is_refused(tmp_path: Path) -> None:
    """A stage must have exactly one of steps or stages."""
    copy = mutated(tmp_path, "steps { mlopsBuild(task: 'codeQuality') }", "")
    assert "exactly one of steps or stages" in refused(copy)


def test_an_unknown_build_cause_is_refused() -> None:
    """--cause nightly is not a cause the harness knows: a command-line error (64) naming the known ones."""
    with pytest.raises(HarnessError) as caught:
        plan(params=MAIN, cause="nightly")
    assert caught.value.returncode == 64
    assert "nightly" in caught.value.stderr and "scm, timer, user, upstream" in caught.value.stderr


CAUSES_JENKINSFILE = """
pipeline {
    agent any
    stages {
        stage('Causes') {
            steps {
                script {
                    echo("all: ${currentBuild.getBuildCauses()*._class}")
                    def timer = currentBuild.getBuildCauses('hudson.triggers.TimerTrigger$TimerTriggerCause')
                    echo("timer: ${timer.size()}")
                    echo("user: ${currentBuild.getBuildCauses('hudson.model.Cause$UserIdCause').size()}")
                }
            }
        }
    }
}
"""


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        ("timer", ["all: [hudson.triggers.TimerTrigger$TimerTriggerCause]", "timer: 1", "user: 0"]),
        ("user", ["all: [hudson.model.Cause$UserIdCause]", "timer: 0", "user: 1"]),
        ("scm", ["all: [jenkins.branch.BranchEventCause]", "timer: 0", "user: 0"]),
    ],
)
def test_build_causes_answer_from_the_cause_option(tmp_path: Path, cause: str, expected: list[str]) -> None:
    """currentBuild.getBuildCauses(), with or without a class name, lists the cause --cause names."""
    path = tmp_path / "Jenkinsfile"
    path.write_text(CAUSES_JENKINSFILE)
    [causes] = plan(path, cause=cause)["stages"]
    assert [step["message"] for step in causes["steps"]] == expected


def test_a_misspelt_build_cause_class_is_refused(tmp_path: Path) -> None:
    """A cause class the harness does not model (here '.' for '$') would be an empty list in Jenkins: exit 2."""
    path = tmp_path / "Jenkinsfile"
    path.write_text(CAUSES_JENKINSFILE.replace("TimerTrigger$TimerTriggerCause", "TimerTrigger.TimerTriggerCause"))
    with pytest.raises(HarnessError) as caught:
        plan(path, cause="timer")
    assert caught.value.returncode == 2
    assert "getBuildCauses('hudson.triggers.TimerTrigger.TimerTriggerCause')" in caught.value.stderr
