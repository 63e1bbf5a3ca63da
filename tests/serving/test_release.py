"""The release on the local target: two stages, QA gates production, rollback walks production's history back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from diabetes_mlops.config import Settings, load_settings
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.deploy.local import ENVIRONMENTS, running_version, undeploy
from diabetes_mlops.deploy.release import ReleaseFailed, release, rollback
from diabetes_mlops.deploy.smoke import smoke_test
from diabetes_mlops.registry.local import LocalRegistry
from diabetes_mlops.train import make_pipeline
from tests.conftest import free_port
from tests.serving.conftest import register_model


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    settings = load_settings(home=tmp_path / "home", qa_port=free_port(), production_port=free_port())
    yield settings
    for env in ENVIRONMENTS:
        undeploy(settings, env)


def register_broken_model(settings: Settings) -> int:
    """A model that loads and answers, but with non-finite predictions: the smoke test must catch it."""
    frame = load_builtin()
    model = make_pipeline(1.0).fit(frame.loc[:, list(FEATURES)], frame["target"])
    model.named_steps["ridge"].coef_ = np.full(len(FEATURES), np.nan)
    return LocalRegistry(settings.registry_dir).register(settings.model_name, model, {}).version


def production_alias(settings: Settings) -> int | None:
    return LocalRegistry(settings.registry_dir).aliases(settings.model_name).get("production")


def test_release_in_two_stages_moves_the_alias_only_after_production(settings: Settings, tmp_path: Path) -> None:
    version = register_model(settings)
    nothing = release(settings, version, stage="production")
    assert not nothing.released and "no version has passed QA" in nothing.reason

    run_dir = tmp_path / "run"
    qa = release(settings, version, run_dir, stage="qa")
    assert qa.released and qa.stage == "qa" and qa.target == "local"
    assert qa.bundle == run_dir / "bundle" and (qa.bundle / "Dockerfile").is_file()
    assert running_version(settings, "qa") == version and running_version(settings, "production") is None
    assert production_alias(settings) is None

    production = release(settings, "latest", run_dir, stage="production")
    assert production.released and production.version == version
    assert production.production_url == f"http://127.0.0.1:{settings.production_port}"
    assert smoke_test(production.production_url, expect_version=version).ok
    assert production_alias(settings) == version
    saved = json.loads((run_dir / "release-production.json").read_text())
    assert saved["production"]["version"] == version and saved["released"] is True

    again = release(settings, version, stage="qa")
    assert not again.released and "already serves" in again.reason
    assert not release(settings, version, stage="production").released


def test_failed_qa_smoke_test_leaves_production_untouched(settings: Settings) -> None:
    good = register_model(settings)
    release(settings, good)
    broken = register_broken_model(settings)
    with pytest.raises(ReleaseFailed, match=r"QA .*smoke test failed.*non-finite"):
        release(settings, broken, stage="qa")
    nothing = release(settings, broken, stage="production")  # what passed QA is still the good version
    assert not nothing.released and f"already serves diabetes:{good}" in nothing.reason
    assert running_version(settings, "qa") == broken
    assert running_version(settings, "production") == good
    assert production_alias(settings) == good


def test_a_failed_production_smoke_test_serves_the_alias_again(settings: Settings) -> None:
    """The production stage deploys what passed QA; if production's smoke test fails, the alias version returns."""
    good = register_model(settings)
    release(settings, good)
    broken = register_broken_model(settings)
    passed = settings.releases_dir / "local-qa.json"
    record = json.loads(passed.read_text())
    record["published"]["version"] = broken  # as if QA had passed a version that fails in production
    passed.write_text(json.dumps(record))
    with pytest.raises(ReleaseFailed, match=f"production .*smoke test failed.*serves diabetes:{good} again"):
        release(settings, stage="production")
    assert running_version(settings, "production") == good and production_alias(settings) == good


def test_rollback_with_nothing_deployed_moves_only_the_alias(settings: Settings) -> None:
    first, second = register_model(settings, 1.0), register_model(settings, 50.0)
    registry = LocalRegistry(settings.registry_dir)
    registry.set_alias(settings.model_name, "production", first)
    registry.set_alias(settings.model_name, "production", second)
    outcome = rollback(settings)
    assert not outcome.released and outcome.version == first and "alias moved" in outcome.reason
    assert production_alias(settings) == first


def test_three_releases_then_rollback_twice_serves_them_in_reverse(home: Path, cli: Callable[..., object]) -> None:
    """As a user drives it: `release --stage qa`, `release --stage production` three times, `rollback` twice."""
    settings = load_settings(home=home)
    versions = [register_model(settings, alpha) for alpha in (1.0, 10.0, 50.0)]
    url = f"http://127.0.0.1:{settings.production_port}"
    for version in versions:
        for stage in ("qa", "production"):
            done = cli("release", "--stage", stage, "--model", str(version))
            assert done.returncode == 0 and f"diabetes:{version}" in done.stdout, done.stderr
    assert smoke_test(url, expect_version=versions[2]).ok

    for expected in (versions[1], versions[0]):
        done = cli("--json", "rollback")
        assert done.returncode == 0, done.stderr
        outcome = json.loads(done.stdout)
        assert outcome["released"] and outcome["version"] == expected
        assert outcome["production"]["url"] == url
        assert smoke_test(url, expect_version=expected).ok
        shown = json.loads(cli("--json", "endpoints").stdout)["endpoints"]
        assert {e["env"]: e["version"] for e in shown}["production"] == expected
        assert production_alias(settings) == expected

    third = cli("rollback")
    assert third.returncode == 1 and "no earlier version" in third.stderr
    assert smoke_test(url, expect_version=versions[0]).ok  # never forth


def test_promote_to_production_switches_what_production_serves(home: Path, cli: Callable[..., object]) -> None:
    settings = load_settings(home=home)
    first, second = register_model(settings, 1.0), register_model(settings, 50.0)
    release(settings, first)
    done = cli("promote", str(second), "--alias", "production")
    assert done.returncode == 0 and "promoted" in done.stdout, done.stderr
    assert running_version(settings, "production") == second and production_alias(settings) == second


def test_smoke_test_cli_reports_the_failing_check(home: Path, cli: Callable[..., object]) -> None:
    settings = load_settings(home=home)
    version = register_model(settings)
    release(settings, version)
    url = f"http://127.0.0.1:{settings.production_port}"
    passed = cli("smoke-test", url, "--expect-version", str(version))
    assert passed.returncode == 0 and "smoke test passed" in passed.stdout
    wrong = cli("smoke-test", url, "--expect-version", "7")
    assert wrong.returncode == 1 and "expected 7" in wrong.stderr
