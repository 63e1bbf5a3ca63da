"""The package's runtime requirements, pinned: every distribution it needs (with the extras asked for), at the
version installed here.

This is what a remote step of the kit runs with (an Azure ML environment built from it): the versions the
submitting build trained and tested with, not whatever the package index holds that day.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

DISTRIBUTION = "diabetes-mlops"


def locked_requirements(extras: tuple[str, ...] = ()) -> list[str]:
    """``name==version`` of every distribution the package and its ``extras`` need, transitively, sorted; the
    package itself is not among them (a job installs it from its wheel)."""
    pinned: dict[str, str] = {}
    visited: set[tuple[str, str]] = set()
    pending: list[tuple[str, tuple[str, ...]]] = [(DISTRIBUTION, extras)]
    while pending:
        name, wanted = pending.pop()
        key = canonicalize_name(name)
        try:
            found = distribution(name)
        except PackageNotFoundError:  # needed only on other platforms or Pythons, so not installed here
            continue
        pinned[key] = found.version
        for extra in ("", *wanted):
            if (key, extra) in visited:
                continue
            visited.add((key, extra))
            for line in found.requires or []:
                requirement = Requirement(line)
                marker = requirement.marker
                if (marker is None and extra) or (marker is not None and not marker.evaluate({"extra": extra})):
                    continue  # an unconditional requirement is taken once, with the bare name
                pending.append((requirement.name, tuple(sorted(requirement.extras))))
    pinned.pop(canonicalize_name(DISTRIBUTION), None)
    return [f"{name}=={version}" for name, version in sorted(pinned.items())]


def lock_digest(lines: list[str], *more: str) -> str:
    """A short content hash of pinned requirements (and anything else that makes the environment)."""
    return hashlib.sha256("\n".join([*lines, *more]).encode()).hexdigest()[:16]
