"""What every registry offers: versions with lineage metadata, aliases, and verified loading."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Protocol

from diabetes_mlops.errors import RegistryError

if TYPE_CHECKING:
    from pathlib import Path

    from sklearn.pipeline import Pipeline

ALIASES = ("champion", "production")
VersionRef = int | str


@dataclass(frozen=True)
class ModelVersion:
    """One registered version and its lineage: where it came from and what it replaced."""

    name: str
    version: int
    created: str
    sha256: str
    params: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    data_fingerprint: str | None = None
    git_commit: str | None = None
    replaced: int | None = None
    run_id: str | None = None
    library_versions: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # sha256 of affine.json, the model folded into weights and bias; None for a model that is not affine
    # (and for versions registered before the file existed), which a service then loads with scikit-learn.
    affine_sha256: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def __repr__(self) -> str:
        from diabetes_mlops.display import version_repr

        return version_repr(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ModelVersion:
        """The version a registry recorded; fields a newer kit added are left out, so an older one still reads it."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})  # type: ignore[arg-type]


class Registry(Protocol):
    """A model registry: register, look up by version or alias, move aliases, load verified models."""

    def register(self, name: str, model: Pipeline, metadata: dict[str, object]) -> ModelVersion: ...

    def get(self, name: str, ref: VersionRef) -> ModelVersion: ...

    def list_versions(self, name: str) -> list[ModelVersion]: ...

    def aliases(self, name: str) -> dict[str, int]: ...

    def set_alias(self, name: str, alias: str, version: int) -> None: ...

    def previous(self, name: str, alias: str) -> int | None:
        """The version a rollback of ``alias`` would move it to, or None when it has no earlier one."""
        ...

    def rollback(self, name: str, alias: str) -> ModelVersion: ...

    def history(self, name: str) -> list[dict[str, object]]: ...

    def load(self, name: str, ref: VersionRef) -> Pipeline: ...

    def version_dir(self, name: str, ref: VersionRef) -> Path:
        """A local directory with the version's model file and metadata (fetched first if remote)."""
        ...


NEXT_STEP = {
    "champion": "diabetes-mlops retrain",
    "production": "diabetes-mlops release",
    "latest": "diabetes-mlops retrain",
}


def unresolved(name: str, ref: str) -> RegistryError:
    """The error for an alias (or ``latest``) that names no version yet, with the verb that sets it."""
    what = "no registered version" if ref == "latest" else f"no {ref!r} alias yet"
    return RegistryError(f"model {name!r} has {what}: run `{NEXT_STEP.get(ref, 'diabetes-mlops retrain')}` first")


def parse_version_ref(text: str) -> VersionRef:
    """A version number, an alias, or ``latest``, from user input."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text in (*ALIASES, "latest"):
        return text
    raise RegistryError(f"{text!r} is neither a version number nor one of {', '.join((*ALIASES, 'latest'))}")


def parse_model_ref(text: str, default_name: str) -> tuple[str, VersionRef]:
    """``NAME:VERSION``, ``NAME:ALIAS`` or just ``VERSION``/``ALIAS`` (the default model name)."""
    name, sep, ref = text.rpartition(":")
    return (name if sep and name else default_name), parse_version_ref(ref)
