"""What every deploy target offers: publish a version, serve it in an environment, say what is served.

A target is a place where the scoring service runs (this machine, or Azure: ACI for QA and AKS for
production). The release orchestrator (``deploy.release``) drives every target through this protocol alone,
so the release, the smoke tests and the alias moves are written once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from diabetes_mlops.errors import DeployError

if TYPE_CHECKING:
    from diabetes_mlops.config import Settings
    from diabetes_mlops.registry import Registry

ENVIRONMENTS = ("qa", "production")
TARGETS = ("local", "azure")


def check_environment(env: str) -> str:
    """``env`` when it is a deployment environment, else a DeployError naming the ones there are."""
    if env not in ENVIRONMENTS:
        raise DeployError(f"unknown environment {env!r}; environments are {', '.join(ENVIRONMENTS)}")
    return env


@dataclass(frozen=True)
class ContainerVariable:
    """One environment variable of a scoring container; a secret one is passed as a secret, never in clear."""

    name: str
    value: str
    secret: bool = False


BLOB_ONLY = ("DIABETES_MLOPS_AZURE_STORAGE_CONTAINER", "DIABETES_MLOPS_SCORING_LOG_UPLOAD_INTERVAL")


LOG_TAIL_LINES = 40  # of a failed build's or service's log, in the error


def log_tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` of a log, as the tail of an error message; "" for an empty log."""
    tail = text.rstrip().splitlines()[-lines:]
    return f"\nThe last {len(tail)} lines of its log:\n" + "\n".join(tail) if tail else ""


def container_environment(settings: Settings, port: int) -> list[ContainerVariable]:
    """What a scoring container needs to serve and to report: key, Blob log store, Application Insights, identity.

    Without the Blob and Application Insights settings a container's scoring log would stay inside it (lost on
    restart, unseen by drift) and its telemetry would go nowhere.
    """
    from diabetes_mlops.azure.clients import require

    wanted = [
        ("PORT", str(port), False),
        ("DIABETES_MLOPS_SCORING_KEY", require(settings, "scoring_key"), True),  # never an open public endpoint
        ("DIABETES_MLOPS_SCORING_PREVIOUS_KEY", settings.scoring_previous_key, True),  # while a rotation rolls out
        ("DIABETES_MLOPS_AZURE_STORAGE_ACCOUNT_URL", settings.azure.storage_account_url, False),
        ("DIABETES_MLOPS_AZURE_STORAGE_CONNECTION_STRING", settings.azure.storage_connection_string, True),
        ("DIABETES_MLOPS_AZURE_STORAGE_CONTAINER", settings.azure.storage_container, False),
        ("DIABETES_MLOPS_SCORING_LOG_UPLOAD_INTERVAL", str(settings.scoring_log_upload_interval), False),
        ("APPLICATIONINSIGHTS_CONNECTION_STRING", settings.azure.appinsights_connection_string, True),
        ("AZURE_CLIENT_ID", settings.azure.identity_client_id, False),  # which managed identity Azure SDKs use
        # Outside the public cloud the container's credential must ask its own cloud's authority for tokens.
        ("DIABETES_MLOPS_AZURE_CLOUD", settings.azure.cloud if settings.azure.cloud != "public" else None, False),
    ]
    logs_to_blob = bool(settings.azure.storage_account_url or settings.azure.storage_connection_string)
    return [
        ContainerVariable(name, value, secret)
        for name, value, secret in wanted
        if value and (logs_to_blob or name not in BLOB_ONLY)
    ]


@dataclass(frozen=True)
class Published:
    """A model version made ready to deploy: its bundle and, where a target runs images, the image by digest."""

    name: str
    version: int
    bundle: Path | None = None
    image: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bundle": str(self.bundle) if self.bundle else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Published:
        bundle = data.get("bundle")
        return cls(data["name"], int(data["version"]), Path(bundle) if bundle else None, data.get("image"))


@dataclass(frozen=True)
class Endpoint:
    """What an environment serves, on any target: its URL, the model version, and the image where there is one."""

    env: str
    target: str
    url: str
    name: str
    version: int
    image: str | None = None
    healthy: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class DeployTarget(Protocol):
    """One place the scoring service runs; chosen by settings (``deploy_target``) or ``--target``."""

    name: str

    def publish(self, registry: Registry, name: str, version: int, out_dir: Path) -> Published:
        """Write the version's bundle to ``out_dir`` and make it deployable (on Azure: build and push its image)."""
        ...

    def published(self, registry: Registry, name: str, version: int) -> Published | None:
        """What was published for the version before (what a rollback serves again), or None."""
        ...

    def deploy(self, env: str, published: Published) -> Endpoint:
        """Serve ``published`` in ``env``, replacing what ran there; return once it is up (not yet smoke-tested)."""
        ...

    def undeploy(self, env: str) -> bool:
        """Stop and remove the deployment of ``env``; False when there was none."""
        ...

    def endpoint(self, env: str) -> Endpoint | None:
        """What ``env`` serves now, with a live health check; None when nothing is deployed there."""
        ...

    def diagnose(self, env: str) -> str:
        """What the platform tells of ``env``'s service (its state, restarts, last log lines), for an error."""
        ...

    def scoring_key(self, env: str) -> str | None:
        """The key ``env``'s service takes (what its smoke test sends); None when it takes none."""
        ...
