"""The release pipeline on local deployments: QA gates production, and rollback serves the previous version."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from diabetes_mlops.config import Settings, load_settings
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.deploy.local import ENVIRONMENTS, running_version, undeploy
from diabetes_mlops.deploy.smoke import smoke_test
from diabetes_mlops.pipelines import ReleaseFailed, release, rollback_production
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


def production_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.production_port}"


def test_release_then_nothing_to_do(settings: Settings) -> None:
    version = register_model(settings)
    outcome = release(settings, version)
    assert outcome.released and outcome.production_url == production_url(settings)
    assert outcome.bundle == settings.home / "bundles" / f"diabetes-{version}"
    assert (outcome.bundle / "Dockerfile").is_file()
    assert smoke_test(outcome.production_url, expect_version=version).ok
    assert LocalRegistry(settings.registry_dir).aliases(settings.model_name)["production"] == version
    again = release(settings, version)
    assert not again.released and "already serves" in again.reason


def test_failed_qa_smoke_test_leaves_production_untouched(settings: Settings) -> None:
    good = register_model(settings)
    release(settings, good)
    broken = register_broken_model(settings)
    with pytest.raises(ReleaseFailed, match=r"QA smoke test failed.*non-finite"):
        release(settings, broken)
    assert running_version(settings, "qa") == broken
    assert running_version(settings, "production") == good
    assert LocalRegistry(settings.registry_dir).aliases(settings.model_name)["production"] == good


def test_rollback_serves_the_previous_production_version(settings: Settings) -> None:
    first, second = register_model(settings, 1.0), register_model(settings, 50.0)
    release(settings, first)
    release(settings, second)
    assert running_version(settings, "production") == second
    outcome = rollback_production(settings)
    assert outcome.released and outcome.version == first
    assert running_version(settings, "production") == first
    assert smoke_test(production_url(settings), expect_version=first).ok
    assert LocalRegistry(settings.registry_dir).aliases(settings.model_name)["production"] == first


def test_smoke_test_cli_reports_the_failing_check(settings: Settings, cli: Callable[..., object]) -> None:
    version = register_model(settings)
    release(settings, version)
    url = production_url(settings)
    passed = cli("smoke-test", url, "--expect-version", str(version))
    assert passed.returncode == 0 and "smoke test passed" in passed.stdout
    wrong = cli("smoke-test", url, "--expect-version", "7")
    assert wrong.returncode == 1 and "expected 7" in wrong.stdout
    dead = cli("smoke-test", f"http://127.0.0.1:{free_port()}", "--timeout", "1")
    assert dead.returncode == 1 and "not ready in time: cannot connect" in dead.stdout
