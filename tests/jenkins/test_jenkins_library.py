"""The shared library in jenkins/: the whole-pipeline step, settings maps, help files and shell resources."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from jenkins_harness import BUILD_STAGES, LIBRARY, STAGE_TREE, plan, running, stage, stage_tree

MAIN = {"TARGET": "local", "SKIP_APPROVAL": "true"}


def jenkinsfile(tmp_path: Path, body: str) -> Path:
    """A one-call Jenkinsfile as a repository using the library would have."""
    path = tmp_path / "Jenkinsfile"
    path.write_text(f"@Library('diabetes-mlops') _\n{body}\n")
    return path


@pytest.mark.parametrize(
    ("branch", "params", "kwargs"),
    [
        ("main", MAIN, {}),
        ("main", {"TARGET": "azure"}, {}),
        ("feature/x", {"FORCE_RETRAIN": "true"}, {}),
        ("main", MAIN, {"cause": "timer"}),
        ("main", MAIN, {"cause": "timer", "statuses": {"Retrain/Train#2": 3}}),
        ("main", {**MAIN, "FORCE_RETRAIN": "true"}, {"cause": "timer"}),
    ],
)
def test_the_library_pipeline_is_the_root_jenkinsfile(
    tmp_path: Path, branch: str, params: dict[str, str], kwargs: dict[str, Any]
) -> None:
    """diabetesMlopsPipeline() with no settings plans exactly what the root Jenkinsfile plans, nightly too."""
    from_library = plan(jenkinsfile(tmp_path, "diabetesMlopsPipeline()"), branch=branch, params=params, **kwargs)
    from_root = plan(branch=branch, params=params, **kwargs)
    assert stage_tree(from_library) == STAGE_TREE
    assert from_library == from_root


def test_the_library_pipeline_takes_a_settings_map(tmp_path: Path) -> None:
    """mainBranch, cron, approval and test selection settings reach the stages, triggers and commands."""
    body = (
        "diabetesMlopsPipeline(mainBranch: 'trunk', cron: 'H 4 * * 1-5', approvalTimeoutHours: 2, "
        "submitter: 'release-managers', pytestArgs: 'tests/test_config.py', timeoutHours: 3)"
    )
    path = jenkinsfile(tmp_path, body)
    trunk = plan(path, branch="trunk", params={"TARGET": "local"})
    assert trunk["triggers"] == [{"name": "cron", "spec": "H 4 * * 1-5"}]
    assert trunk["options"][0] == {"name": "timeout", "args": {"time": 3, "unit": "HOURS"}}
    approval = stage(trunk, "Release/Approve production")["input"]
    assert approval["submitter"] == "release-managers"
    assert approval["within"] == ["timeout(time: 2, unit: 'HOURS')"]
    [unit] = [c for c in trunk["commands"] if c["id"] == "Build/Unit tests#1"]
    assert unit["env"]["PYTEST_ARGS"] == "tests/test_config.py"
    main = plan(path, branch="main", params=MAIN)
    assert running(main) == ["Build"] + [f"Build/{name}" for name in BUILD_STAGES]


def test_an_unknown_setting_of_the_library_pipeline_is_refused(tmp_path: Path) -> None:
    """A misspelt key (mainbranch) is an error naming it, not a silent default."""
    from jenkins_harness import HarnessError

    with pytest.raises(HarnessError) as caught:
        plan(jenkinsfile(tmp_path, "diabetesMlopsPipeline(mainbranch: 'trunk')"), params=MAIN)
    assert "unknown setting(s) [mainbranch]" in caught.value.stderr


def test_the_steps_run_all_their_tasks_in_order_when_called_once(tmp_path: Path) -> None:
    """mlopsBuild(), mlopsRetrain() and mlopsRelease() without a task run every task in order."""
    body = """
pipeline {
    agent any
    stages {
        stage('Everything') {
            steps {
                mlopsBuild()
                mlopsRetrain()
                mlopsRelease(approvalTimeoutHours: 1)
            }
        }
    }
}"""
    steps = stage(plan(jenkinsfile(tmp_path, body)), "Everything")["steps"]
    labels = [s.get("label") or s["step"] for s in steps if s["step"] in ("sh", "input")]
    assert labels == [
        "Setup: virtual environment",
        "Code quality: ruff",
        "Unit tests: pytest",
        "Data tests: validate-data and schema properties",
        "Train",
        "Evaluate",
        "Register",
        "Release qa",
        "input",
        "Release production",
    ]


RETRAIN_JENKINSFILE = """
pipeline {
    agent any
    stages {
        stage('Retrain') { steps { mlopsRetrain(%s) } }
    }
}"""


@pytest.mark.parametrize(
    ("settings", "cause", "labels"),
    [
        ("", "scm", ["Train", "Evaluate", "Register"]),
        ("", "timer", ["Drift report", "Train if due", "Evaluate", "Register"]),
        ("ifDue: true", "user", ["Drift report", "Train if due", "Evaluate", "Register"]),
        ("ifDue: false", "timer", ["Train", "Evaluate", "Register"]),
        ("force: true, ifDue: true", "timer", ["Train", "Evaluate", "Register"]),
    ],
)
def test_mlops_retrain_trains_if_due_on_timer_builds_unless_told_otherwise(
    tmp_path: Path, settings: str, cause: str, labels: list[str]
) -> None:
    """mlopsRetrain(): drift report and train --if-due when the timer started the build or ifDue says so;
    force (the Jenkinsfile passes FORCE_RETRAIN) always trains."""
    result = plan(jenkinsfile(tmp_path, RETRAIN_JENKINSFILE % settings), cause=cause)
    assert [s["label"] for s in stage(result, "Retrain")["steps"] if s["step"] == "sh"] == labels


def test_mlops_retrain_not_due_skips_evaluate_and_register_and_takes_the_drift_window(tmp_path: Path) -> None:
    """Exit 3 of train --if-due with task 'all': evaluate and register are skipped; driftSince reaches the report."""
    path = jenkinsfile(tmp_path, RETRAIN_JENKINSFILE % "driftSince: '7d'")
    result = plan(path, cause="timer", statuses={"Retrain#2": 3})
    commands = result["commands"]
    assert [c["label"] for c in commands] == ["Drift report", "Train if due"]
    assert commands[0]["env"]["MLOPS_DRIFT_SINCE"] == "7d"
    assert result["result"] == "SUCCESS" and result["description"].startswith("Retrain not due")
    echoes = [s["message"] for s in stage(result, "Retrain")["steps"] if s["step"] == "echo"]
    assert "mlopsRetrain: champion kept, evaluate skipped" in echoes


def test_mlops_sh_refuses_an_interpolated_script(tmp_path: Path) -> None:
    """A GString script fails the build with a message: values go through env, not into the script."""
    body = """
pipeline {
    agent any
    stages {
        stage('Leaky') { steps { mlopsSh(script: "echo ${env.BUILD_NUMBER}") } }
    }
}"""
    result = plan(jenkinsfile(tmp_path, body))
    assert result["result"] == "FAILURE"
    assert "single-quoted" in stage(result, "Leaky")["error"]


def _defaults(var: Path) -> list[str]:
    """The keys of the defaults map a var merges with StepConfig.merge."""
    block = re.search(r"StepConfig\.merge\(this, '\w+', \[(.*?)\n    \], config\)", var.read_text(), re.S)
    assert block is not None, var
    return re.findall(r"^\s+(\w+):", block.group(1), re.M)


class _Tags(HTMLParser):
    """Checks that every tag a help file opens is closed in order, as Jenkins' help pages need."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, tag


@pytest.mark.parametrize("var", sorted(LIBRARY.glob("vars/*.groovy")), ids=lambda p: p.stem)
def test_every_step_has_a_help_file_listing_each_key_with_default_and_example(var: Path) -> None:
    """vars/<step>.txt is HTML (Jenkins shows it as the step's help): it names the step and every key of its
    defaults, each with a default and an example."""
    help_text = var.with_suffix(".txt").read_text()
    keys = _defaults(var)
    assert len(keys) >= 5
    assert help_text.startswith(f"<p><code>{var.stem}(Map config = [:])</code>")
    tags = _Tags()
    tags.feed(help_text)
    assert tags.open == []
    for key in keys:
        assert re.search(rf"<dt><code>{key}</code></dt>\n  <dd>default <code>.+</code>; e\.g\. <code>", help_text), key


def test_the_library_has_the_four_documented_steps() -> None:
    """mlopsBuild, mlopsRetrain, mlopsRelease and diabetesMlopsPipeline exist, each with call(Map config = [:])."""
    for name in ["mlopsBuild", "mlopsRetrain", "mlopsRelease", "diabetesMlopsPipeline", "mlopsSh"]:
        assert "def call(Map config = [:])" in (LIBRARY / "vars" / f"{name}.groovy").read_text()


@pytest.mark.parametrize("resource", sorted(LIBRARY.glob("resources/**/*.sh")), ids=lambda p: p.name)
def test_shell_resources_parse(resource: Path) -> None:
    """Each shell resource is valid for the shell that runs it (bash with a #! line, else sh)."""
    shell = "bash" if resource.read_text().startswith("#!/usr/bin/env bash") else "sh"
    result = subprocess.run([shell, "-n", str(resource)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
