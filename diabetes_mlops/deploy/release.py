"""The one release, for every target: a ``qa`` stage, a ``production`` stage, and production's rollback.

The qa stage publishes a version (its bundle; on Azure its image, by digest), deploys it to QA, smoke-tests it
with the scoring key and the expected version, and records that it passed in ``<home>/releases/<target>-qa.json``.
The production stage deploys the version recorded there, smoke-tests it the same way, and only then moves the
``production`` alias (with its history). Production's alias and what production serves never disagree: a
rollback or a promotion to production serves the version before it moves the alias. Jenkins calls the two
stages either side of its approval; ``release`` with ``stage="all"`` runs both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diabetes_mlops.deploy.targets import DeployTarget, Endpoint, Published, open_target
from diabetes_mlops.errors import DeployError, RegistryError
from diabetes_mlops.files import write_atomic
from diabetes_mlops.runs import RunDir

if TYPE_CHECKING:
    from diabetes_mlops.config import Settings
    from diabetes_mlops.registry import Registry
    from diabetes_mlops.registry.base import VersionRef

STAGES = ("qa", "production", "all")
PRODUCTION = "production"


class ReleaseFailed(DeployError):
    """A release stopped at a failed check; the message says what production serves now."""


@dataclass(frozen=True)
class ReleaseOutcome:
    """What a release stage (or a rollback) did, on which target: the version, where it runs, or why nothing."""

    stage: str
    target: str
    name: str
    version: int | None
    released: bool
    reason: str
    published: Published | None = None
    qa: Endpoint | None = None
    production: Endpoint | None = None

    @property
    def qa_url(self) -> str | None:
        return self.qa.url if self.qa else None

    @property
    def production_url(self) -> str | None:
        return self.production.url if self.production else None

    @property
    def bundle(self) -> Path | None:
        return self.published.bundle if self.published else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["published"] = self.published.to_dict() if self.published else None
        return {**data, "qa_url": self.qa_url, "production_url": self.production_url}

    def __repr__(self) -> str:
        from diabetes_mlops.display import release_repr

        return release_repr(self.name, self.version, self.released, self.reason)

    def _repr_html_(self) -> str:
        from diabetes_mlops.display import release_html

        urls = {"QA": self.qa_url, "production": self.production_url}
        return release_html(self.name, self.version, self.released, self.reason, urls)


def published_version(
    settings: Settings, registry: Registry, target: DeployTarget, name: str, version: int
) -> Published:
    """What was published for ``name:version`` on ``target`` before, or a new publication of it."""
    from diabetes_mlops.deploy.bundle import bundle_dir

    found = target.published(registry, name, version)
    return found or target.publish(registry, name, version, bundle_dir(settings, name, version))


class _Release:
    """One release's parts: settings, registry, target; each stage a method."""

    def __init__(self, settings: Settings, target: str | DeployTarget | None) -> None:
        from diabetes_mlops.registry import open_registry

        self.settings = settings
        self.registry: Registry = open_registry(settings)
        self.target = target if isinstance(target, DeployTarget) else open_target(settings, target)
        self.record = settings.releases_dir / f"{self.target.name}-qa.json"

    def outcome(self, stage: str, name: str, version: int | None, released: bool, reason: str, **parts: Any):
        return ReleaseOutcome(stage, self.target.name, name, version, released, reason, **parts)

    def serves(self, env: str, name: str, version: int) -> bool:
        """Whether ``env`` answers its health check with ``name:version``."""
        found = self.target.endpoint(env)
        return bool(found and found.healthy and (found.name, found.version) == (name, version))

    def smoke(self, endpoint: Endpoint, what: str) -> None:
        from diabetes_mlops.deploy.smoke import smoke_test

        key = self.target.scoring_key(endpoint.env)
        checked = smoke_test(endpoint.url, key, endpoint.version, self.settings.smoke_timeout)
        if not checked.ok:
            found = self.target.diagnose(endpoint.env)
            raise ReleaseFailed(f"{what}: smoke test failed at {endpoint.url}: {checked.reason}{found}")

    def qa(self, ref: VersionRef, run_dir: Path | None) -> ReleaseOutcome:
        from diabetes_mlops.deploy.bundle import bundle_dir

        entry = self.registry.get(self.settings.model_name, ref)
        name, version = entry.name, entry.version
        if self.registry.aliases(name).get(PRODUCTION) == version and self.serves(PRODUCTION, name, version):
            return self.outcome("qa", name, version, False, f"production already serves {name}:{version}")
        published = self.target.publish(self.registry, name, version, bundle_dir(self.settings, name, version, run_dir))
        qa = self.target.deploy("qa", published)
        self.smoke(qa, f"QA ({name}:{version}); production left as it was")
        passed = {"published": published.to_dict(), "qa": qa.to_dict(), "time": datetime.now(UTC).isoformat()}
        self.record.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.record, json.dumps(passed, indent=2).encode())
        return self.outcome("qa", name, version, True, "passed QA", published=published, qa=qa)

    def passed_qa(self) -> Published | None:
        if not self.record.is_file():
            return None
        return Published.from_dict(json.loads(self.record.read_text())["published"])

    def production(self) -> ReleaseOutcome:
        published = self.passed_qa()
        if published is None:
            reason = f"no version has passed QA on the {self.target.name} target: run `release --stage qa` first"
            return self.outcome(PRODUCTION, self.settings.model_name, None, False, reason)
        name, version = published.name, published.version
        if self.registry.aliases(name).get(PRODUCTION) == version and self.serves(PRODUCTION, name, version):
            return self.outcome(PRODUCTION, name, version, False, f"production already serves {name}:{version}")
        production = self.serve_production(published, "promote")
        return self.outcome(PRODUCTION, name, version, True, "released", published=published, production=production)

    def serve_production(self, published: Published, action: str) -> Endpoint:
        """Deploy to production, smoke-test, then move the alias; on a failed smoke test serve the alias again."""
        name, version = published.name, published.version
        current = self.registry.aliases(name).get(PRODUCTION)
        production = self.target.deploy(PRODUCTION, published)
        try:
            self.smoke(production, f"production ({name}:{version})")
        except ReleaseFailed as failed:
            raise ReleaseFailed(f"{failed}; {self.restore(name, current)}") from None
        if action == "rollback":
            self.registry.rollback(name, PRODUCTION)
        else:
            self.registry.set_alias(name, PRODUCTION, version)
        return production

    def restore(self, name: str, version: int | None) -> str:
        """Serve the version the production alias names again; say what production serves now."""
        if version is None:
            return "the production alias names no version"
        try:
            earlier = self.published_version(name, version)
            self.target.deploy(PRODUCTION, earlier)
        except DeployError as exc:
            return f"restoring {name}:{version} failed too: {exc}"
        return f"production serves {name}:{version} again"

    def published_version(self, name: str, version: int) -> Published:
        return published_version(self.settings, self.registry, self.target, name, version)


def release(
    settings: Settings,
    model_ref: VersionRef = "champion",
    run_dir: Path | None = None,
    *,
    stage: str = "all",
    target: str | DeployTarget | None = None,
) -> ReleaseOutcome:
    """Run the ``qa`` stage, the ``production`` stage, or both (``all``) on the target the settings name.

    ``target`` is a target's name or a ``DeployTarget`` (one built with its own credential or transport).
    A failed smoke test raises ReleaseFailed; a stage with nothing to do returns ``released=False`` and why.
    With ``run_dir`` the bundle goes there and each stage's outcome is saved as ``release-<stage>.json``.
    """
    if stage not in STAGES:
        raise DeployError(f"unknown release stage {stage!r}; stages are {', '.join(STAGES)}")
    run = _Release(settings, target)
    outcomes = []
    if stage in ("qa", "all"):
        outcomes.append(run.qa(model_ref, run_dir))
    if stage == PRODUCTION or (stage == "all" and outcomes[0].released):
        outcomes.append(run.production())
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        for outcome in outcomes:
            RunDir(run_dir).release(outcome.stage).write_text(json.dumps(outcome.to_dict(), indent=2))
    if len(outcomes) == 1:
        return outcomes[0]
    qa, production = outcomes
    return ReleaseOutcome(
        "all", qa.target, qa.name, qa.version, production.released, production.reason, qa.published, qa.qa,
        production.production,
    )  # fmt: skip


def rollback(settings: Settings, target: str | DeployTarget | None = None) -> ReleaseOutcome:
    """Serve the version production's alias held before, then move the alias back (twice goes two back).

    When nothing is deployed in production on the target, only the alias moves.
    """
    run = _Release(settings, target)
    name = settings.model_name
    version = run.registry.previous(name, PRODUCTION)
    if version is None:
        raise RegistryError(f"alias 'production' of model {name!r} has no earlier version to roll back to")
    if run.target.endpoint(PRODUCTION) is None:
        run.registry.rollback(name, PRODUCTION)
        return run.outcome("rollback", name, version, False, "alias moved; no production deployment runs")
    production = run.serve_production(run.published_version(name, version), "rollback")
    return run.outcome("rollback", name, version, True, "rolled back", production=production)


def promote_production(settings: Settings, version: int, target: str | DeployTarget | None = None) -> ReleaseOutcome:
    """Point production's alias at ``version``, serving it first when a production deployment runs."""
    run = _Release(settings, target)
    name = settings.model_name
    if run.target.endpoint(PRODUCTION) is None:
        run.registry.set_alias(name, PRODUCTION, version)
        return run.outcome("promote", name, version, False, "alias moved; no production deployment runs")
    production = run.serve_production(run.published_version(name, version), "promote")
    return run.outcome("promote", name, version, True, "promoted", production=production)
