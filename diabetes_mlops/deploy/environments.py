"""Whether a model is served by the libraries it was trained with: a release in any other environment is refused.

A model file is only as good as the code that reads it: scikit-learn does not promise that an estimator
trained by one version predicts the same under another, and skops refuses types it does not know. So the
service's Python (major and minor) and its numerical libraries must be the versions the model's
``library_versions`` records. On Azure the image pins those libraries to the model's versions and its Python
is ``IMAGE_PYTHON``; locally the service runs in this interpreter, with what is installed here.
"""

from __future__ import annotations

from collections.abc import Mapping

from diabetes_mlops.errors import DeployError

# What the service loads the model with (pandas trains but is not served).
SERVED_LIBRARIES = ("numpy", "scikit-learn", "scipy", "skops")
IMAGE_PYTHON = "3.11"  # the scoring image's base: python:<this>-slim


class EnvironmentMismatch(DeployError):
    """The service would run other library versions than the model was trained with."""


def _minor(python: str) -> str:
    return ".".join(python.split(".")[:2])


def differences(trained: Mapping[str, str], serving: Mapping[str, str]) -> list[str]:
    """Each served library (and Python) whose version differs between training and serving, named with both."""
    found = []
    if trained.get("python") and serving.get("python") and _minor(trained["python"]) != _minor(serving["python"]):
        found.append(f"Python: trained with {trained['python']}, served with {serving['python']}")
    for name in SERVED_LIBRARIES:
        if name in trained and name in serving and trained[name] != serving[name]:
            found.append(f"{name}: trained with {trained[name]}, served with {serving[name]}")
    return found


def require_same_environment(
    name: str, version: int, trained: Mapping[str, str], serving: Mapping[str, str], where: str
) -> None:
    """Raise EnvironmentMismatch naming every difference between the model's environment and ``where``'s."""
    found = differences(trained, serving)
    if found:
        raise EnvironmentMismatch(
            f"{name}:{version} is not released: {where} differs from the environment it was trained in: "
            + "; ".join(found)
            + ". Retrain it with these versions, or release it from an environment that has its own."
        )
