"""Run the sh steps of local main builds, in order, in copies of the repository, as Jenkins would: each build
gets its own JENKINS_NODE_COOKIE, and at its end every process carrying it is killed, as Jenkins' process tree
killer does."""

from __future__ import annotations

import glob
import json
import os
import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from jenkins_agent import (
    PARAMS,
    Agent,
    Build,
    agent_environment,
    archived,
    assert_junit_passed,
    new_workspace,
)
from jenkins_harness import BUILD_STAGES, plan, running, steps_named


def test_local_main_builds_release_keep_the_champion_and_roll_back(tmp_path: Path) -> None:
    """Build 1 runs every stage and leaves production answering after Jenkins killed the build's processes;
    build 2, in a fresh workspace of the job on the same agent, finds the champion and keeps it; build 3,
    nightly, reports no drift and finds no retrain due, so it trains nothing; builds 4 and 5 release better
    models through both Release stages; `rollback` twice then serves versions 2 and 1."""
    workspace, commit = new_workspace(tmp_path, "workspace")
    env = agent_environment(tmp_path)
    qa_port, production_port = env["DIABETES_MLOPS_QA_PORT"], env["DIABETES_MLOPS_PRODUCTION_PORT"]
    agent = Agent(workspace, env, commit)
    try:
        first = agent.build(1)
        assert first.plan["result"] == "SUCCESS" and first.plan["description"] is None
        assert "Release/Release production" in running(first.plan)
        assert first.exit_codes["Retrain/Evaluate#1"] == first.exit_codes["Retrain/Register#1"] == 0
        assert len(first.exit_codes) == len(first.plan["commands"])

        [junit] = steps_named(first.plan, "junit")
        reports = sorted(glob.glob(str(workspace / junit["testResults"])))
        assert [Path(r).name for r in reports] == ["junit-data.xml", "junit-unit.xml"]
        assert all(assert_junit_passed(Path(r)) for r in reports)
        [coverage] = steps_named(first.plan, "recordCoverage")
        coverage_root = ET.parse(workspace / coverage["tools"][0]["pattern"]).getroot()
        assert coverage_root.tag == "coverage" and float(coverage_root.get("line-rate", "0")) > 0

        files = set().union(*(archived(workspace, a["artifacts"]) for a in steps_named(first.plan, "archiveArtifacts")))
        run_dir = ".mlops/runs/build-1"
        for name in [
            "evaluation.json",
            "model_card.md",
            "registered.json",
            "release-qa.json",
            "release-production.json",
        ]:
            assert f"{run_dir}/{name}" in files, name
        assert any(f.endswith(".png") for f in files)
        assert any(f.startswith(f"{run_dir}/bundle/") for f in files)
        assert "reports/validation.json" in files

        # the build's processes were killed when it ended: production survives because it does not carry the cookie
        assert agent.cli("smoke-test", f"http://127.0.0.1:{production_port}").returncode == 0
        with socket.socket() as sock:  # Release QA's post cleanup undeployed QA
            assert sock.connect_ex(("127.0.0.1", int(qa_port))) != 0
        assert not (workspace / ".mlops" / "registry").exists()  # the registry lives in the agent's home

        fresh = Agent(new_workspace(tmp_path, "workspace-fresh")[0], env, commit)
        second = fresh.build(2)
        assert second.plan["result"] == "SUCCESS"
        assert second.plan["description"].startswith("Champion kept")
        assert second.exit_codes["Retrain/Evaluate#1"] == 3
        build_paths = ["Build"] + [f"Build/{name}" for name in BUILD_STAGES]
        assert running(second.plan) == [*build_paths, "Retrain", "Retrain/Train", "Retrain/Evaluate"]
        assert list(second.exit_codes)[-1] == "Retrain/Evaluate#1"
        smoke = agent.cli("smoke-test", f"http://127.0.0.1:{production_port}", "--expect-version", "1")
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr

        nightly = agent.build(3, cause="timer")
        assert nightly.plan["result"] == "SUCCESS"
        assert nightly.plan["description"].startswith("Retrain not due")
        assert nightly.exit_codes["Retrain/Train#1"] == 0  # drift report: too few logged rows (smoke tests excluded)
        assert nightly.exit_codes["Retrain/Train#2"] == 3  # train --if-due: champion current, no drift alarm
        assert running(nightly.plan) == [*build_paths, "Retrain", "Retrain/Train"]
        run_dir_3 = workspace / ".mlops" / "runs" / "build-3"
        assert (run_dir_3 / "drift" / "drift.md").is_file()
        assert sorted(path.name for path in run_dir_3.iterdir()) == ["drift"]  # nothing trained

        # Two better models, each released through Release QA and Release production; then rollback twice.
        for build_number, alpha, version in [(4, "5", 2), (5, "20", 3)]:
            agent.env["DIABETES_MLOPS_ALPHA"] = alpha
            better = agent.build(build_number)
            assert better.plan["result"] == "SUCCESS" and better.plan["description"] is None
            assert better.exit_codes["Release/Release QA#1"] == better.exit_codes["Release/Release production#1"] == 0
            released = json.loads((workspace / f".mlops/runs/build-{build_number}/release-production.json").read_text())
            assert released["released"] and released["version"] == version
            aliases = json.loads(agent.cli("--json", "models", "list").stdout)["aliases"]
            assert aliases == {"champion": version, "production": version}
        agent.env.pop("DIABETES_MLOPS_ALPHA")
        for expected in (2, 1):
            rolled = agent.cli("--json", "rollback")
            assert rolled.returncode == 0 and json.loads(rolled.stdout)["version"] == expected, rolled.stderr
            smoke = agent.cli("smoke-test", f"http://127.0.0.1:{production_port}", "--expect-version", str(expected))
            assert smoke.returncode == 0, smoke.stdout + smoke.stderr
            assert json.loads(agent.cli("--json", "models", "list").stdout)["aliases"]["production"] == expected
    finally:
        if (workspace / ".venv" / "bin" / "diabetes-mlops").exists():
            agent.cli("undeploy", "qa")
            agent.cli("undeploy", "production")


def published_junit(workspace: Path, build: Build) -> list[str]:
    """The report files the build's junit step would parse: with skipOldReports, only those written during it."""
    [junit] = steps_named(build.plan, "junit")
    found = sorted(glob.glob(str(workspace / junit["testResults"])))
    if junit.get("skipOldReports"):
        found = [path for path in found if Path(path).stat().st_mtime >= build.started]
    return [str(Path(path).relative_to(workspace)) for path in found]


def test_a_failed_build_publishes_no_report_of_an_earlier_build(tmp_path: Path) -> None:
    """Reports left in a kept workspace by an earlier build are neither parsed by junit nor archived when this
    build fails in Code quality."""
    workspace, commit = new_workspace(tmp_path, "workspace")
    stale = {"junit-unit.xml": '<testsuite name="unit-tests" tests="1"/>', "validation.json": '{"stale": true}'}
    for name, text in stale.items():
        (workspace / "reports").mkdir(exist_ok=True)
        (workspace / "reports" / name).write_text(text)
        os.utime(workspace / "reports" / name, (time.time() - 86400, time.time() - 86400))
    (workspace / "diabetes_mlops" / "lint_failure.py").write_text("import os\n")  # ruff F401: Code quality fails
    agent = Agent(workspace, agent_environment(tmp_path), commit)
    failed = agent.build(7, may_fail="Build/Code quality#1")
    assert failed.plan["result"] == "FAILURE" and failed.exit_codes["Build/Code quality#1"] != 0
    assert published_junit(workspace, failed) == []
    archived_files = set().union(
        *(archived(workspace, a["artifacts"]) for a in steps_named(failed.plan, "archiveArtifacts"))
    )
    assert not {f for f in archived_files if f.startswith("reports/")}


def test_a_feature_branch_plan_has_only_build() -> None:
    """The plan the executor would run for a feature branch holds Build's commands only."""
    result = plan(branch="feature/docs", params=PARAMS)
    assert [c["stage"][0] for c in result["commands"]] == ["Build"] * 4
