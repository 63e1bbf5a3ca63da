"""Training is reproducible and measures what it says."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from diabetes_mlops.config import Settings
from diabetes_mlops.data import FEATURES, fingerprint, load_builtin, merge_batches, split
from diabetes_mlops.train import train


def test_two_trainings_give_identical_models_and_metrics(settings: Settings) -> None:
    frame = load_builtin()
    first, first_result = train(frame, settings)
    second, second_result = train(frame, settings)
    np.testing.assert_array_equal(first.named_steps["ridge"].coef_, second.named_steps["ridge"].coef_)
    assert first_result.metrics == second_result.metrics
    assert first_result.data_fingerprint == second_result.data_fingerprint


def test_metrics_are_those_of_the_test_split(settings: Settings) -> None:
    frame = load_builtin()
    model, result = train(frame, settings)
    _, test = split(frame, settings.test_size, settings.seed)
    residual = test["target"].to_numpy() - model.predict(test.loc[:, list(FEATURES)])
    assert result.metrics["mse"] == pytest.approx(float(np.mean(residual**2)))
    assert result.metrics["rmse"] == pytest.approx(result.metrics["mse"] ** 0.5)
    assert result.n_test == len(test) and result.n_train == len(frame) - len(test)
    assert 0.3 < result.metrics["r2"] < 0.7


def test_grid_search_picks_an_alpha_from_the_grid(settings: Settings) -> None:
    searched = dataclasses.replace(settings, cv_alphas=(0.01, 0.1, 1.0, 10.0, 100.0))
    model, result = train(load_builtin(), searched)
    assert result.params["alpha"] in searched.cv_alphas
    assert model.named_steps["ridge"].alpha == result.params["alpha"]


def test_a_different_seed_gives_a_different_split(settings: Settings) -> None:
    _, a = train(load_builtin(), settings)
    _, b = train(load_builtin(), dataclasses.replace(settings, seed=settings.seed + 1))
    assert a.metrics != b.metrics


def test_fingerprint_is_stable_and_content_sensitive() -> None:
    frame = load_builtin()
    assert fingerprint(frame) == fingerprint(load_builtin())
    # A fixed value guards against a fingerprint that changes between machines or versions.
    assert fingerprint(frame) == FROZEN_FINGERPRINT
    changed = frame.copy()
    changed.loc[0, "bmi"] += 0.1
    assert fingerprint(changed) != fingerprint(frame)
    assert fingerprint(merge_batches(frame, frame.head(1))) != fingerprint(frame)


FROZEN_FINGERPRINT = "876c7f5c7acd57747cb375deca024e4cfa97ddbd3e7d8c7f98d3254c96e5ed61"
