"""The ``Registry`` protocol on Azure ML's model registry (``MLClient.models``).

Conventions, since Azure ML has no aliases and model versions are immutable apart from their tags:

* The model file, and its affine map (``affine.json``) when it has one, go to the workspace's default
  datastore under ``diabetes-mlops/models/<name>/<sha256>/`` (content-addressed, so a retried upload is
  harmless); the version's path points there, and is created only after the files are uploaded.
* Lineage is in tags, for people and for search in the studio: ``sha256``, ``data_fingerprint``,
  ``git_commit``, ``replaced``, ``run_id``, ``metric.<name>``. The whole ``ModelVersion`` (less name and
  version, which Azure ML owns) is also kept as the JSON property ``diabetes_mlops.metadata``.
* An alias is the tag ``alias.<alias>`` whose value is the UTC time it moved onto that version; the holder
  is the version with the latest such time, so a move interrupted between its two writes still resolves.
  ``alias.<alias>.previous`` records the version it replaced (for rollback) and ``alias.<alias>.log`` the
  moves onto that version (``promote@<time>;rollback@<time>``), from which ``history`` is rebuilt.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diabetes_mlops.artifacts import (
    METADATA_FILE,
    MODEL_FILE,
    load_model,
    save_version_files,
    verify_version_files,
    version_files,
)
from diabetes_mlops.errors import IntegrityError, RegistryError
from diabetes_mlops.files import sha256_file
from diabetes_mlops.registry.base import ALIASES, ModelVersion, VersionRef, unresolved

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Model
    from azure.core.credentials import TokenCredential
    from sklearn.pipeline import Pipeline

    from diabetes_mlops.azure.artifacts import DatastoreFiles
    from diabetes_mlops.config import Settings

METADATA_PROPERTY = "diabetes_mlops.metadata"
MODELS_PREFIX = "diabetes-mlops/models"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _alias_tag(alias: str) -> str:
    return f"alias.{alias}"


def _number(entity: Model) -> int:
    """A registered model's version number (Azure ML gives versions as strings)."""
    if entity.version is None:
        raise RegistryError(f"model {entity.name} has a version without a number")
    return int(entity.version)


class AzureMLRegistry:
    """A ``Registry`` whose versions live in an Azure ML workspace and whose files live in its datastore."""

    def __init__(self, ml_client: MLClient, files: DatastoreFiles, cache_dir: Path | None = None) -> None:
        self.ml_client = ml_client
        self.files = files
        self.cache_dir = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "diabetes-mlops-azureml"

    @classmethod
    def from_settings(cls, settings: Settings, credential: TokenCredential | None = None) -> AzureMLRegistry:
        from diabetes_mlops.azure.artifacts import DatastoreFiles
        from diabetes_mlops.azure.clients import default_credential, ml_client

        credential = credential or default_credential(settings)
        client = ml_client(settings, credential)
        return cls(client, DatastoreFiles.from_workspace(client, credential), settings.home / "azureml-cache")

    # --- reading -------------------------------------------------------------------------------------

    def _entities(self, name: str) -> list[Model]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return sorted(self.ml_client.models.list(name=name), key=_number)
        except ResourceNotFoundError:
            return []

    def _entity(self, name: str, version: int) -> Model:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.ml_client.models.get(name, version=str(version))
        except ResourceNotFoundError:
            raise RegistryError(f"model {name!r} has no version {version}") from None

    @staticmethod
    def _to_version(entity: Model) -> ModelVersion:
        raw = (entity.properties or {}).get(METADATA_PROPERTY)
        if raw is None:
            raise RegistryError(f"model {entity.name}:{entity.version} was not registered by diabetes-mlops")
        return ModelVersion.from_dict({**json.loads(raw), "name": entity.name, "version": _number(entity)})

    def list_versions(self, name: str) -> list[ModelVersion]:
        return [self._to_version(e) for e in self._entities(name)]

    def _holders(self, name: str) -> dict[str, Model]:
        """For each alias, the version entity that holds it (the latest move wins)."""
        best: dict[str, tuple[str, Model]] = {}
        for entity in self._entities(name):
            for alias in ALIASES:
                moved = (entity.tags or {}).get(_alias_tag(alias))
                if moved and (alias not in best or moved > best[alias][0]):
                    best[alias] = (moved, entity)
        return {alias: entity for alias, (_, entity) in best.items()}

    def aliases(self, name: str) -> dict[str, int]:
        return {alias: _number(entity) for alias, entity in self._holders(name).items()}

    def resolve(self, name: str, ref: VersionRef) -> int:
        """The version number a reference names: a number, an alias, or ``latest``."""
        if isinstance(ref, int):
            return ref
        if ref == "latest":
            entities = self._entities(name)
            if not entities:
                raise unresolved(name, ref)
            return _number(entities[-1])
        aliases = self.aliases(name)
        if ref not in aliases:
            raise unresolved(name, ref)
        return aliases[ref]

    def get(self, name: str, ref: VersionRef) -> ModelVersion:
        return self._to_version(self._entity(name, self.resolve(name, ref)))

    def download(self, name: str, ref: VersionRef, dest: Path) -> Path:
        """Download a version's files (model, affine map) into ``dest`` and check their sha256; the model's path."""
        from diabetes_mlops.azure.artifacts import DatastoreFiles

        entity = self._entity(name, self.resolve(name, ref))
        entry = self._to_version(entity)
        self.files.download_dir(DatastoreFiles.prefix_of(str(entity.path)), dest)
        for file_name, sha256 in version_files(entry).items():
            path = Path(dest) / file_name
            if not path.is_file() or sha256_file(path) != sha256:
                raise IntegrityError(
                    f"model {name}:{entry.version}: the stored {file_name} does not match the sha256 recorded at "
                    "registration"
                )
        return Path(dest) / MODEL_FILE

    def version_dir(self, name: str, ref: VersionRef) -> Path:
        """A local copy of the version (its files checked against their sha256, ``metadata.json``)."""
        entry = self.get(name, ref)
        target = self.cache_dir / name / str(entry.version)
        try:
            verify_version_files(target, entry)
        except IntegrityError:  # absent or changed on disk: fetched again rather than trusted
            staging = Path(tempfile.mkdtemp(dir=self._cache_root(name), prefix=".incoming-"))
            self.download(name, entry.version, staging)
            (staging / METADATA_FILE).write_text(json.dumps(entry.to_dict(), indent=2, sort_keys=True))
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)  # whole or absent, as in the local registry
        return target

    def _cache_root(self, name: str) -> Path:
        root = self.cache_dir / name
        root.mkdir(parents=True, exist_ok=True)
        return root

    def load(self, name: str, ref: VersionRef) -> Pipeline:
        """The model of a version, downloaded and loaded only after its sha256 matches the recorded one."""
        entry = self.get(name, ref)
        with tempfile.TemporaryDirectory(prefix="diabetes-mlops-model-") as tmp:
            path = self.download(name, entry.version, Path(tmp))
            return load_model(path, entry.sha256)

    # --- writing -------------------------------------------------------------------------------------

    def register(self, name: str, model: Pipeline, metadata: dict[str, object]) -> ModelVersion:
        """Upload the model file, then create the next version with lineage tags; Azure ML picks the number."""
        from azure.ai.ml.entities import Model

        with tempfile.TemporaryDirectory(prefix="diabetes-mlops-register-") as tmp:
            hashes = save_version_files(model, Path(tmp))
            prefix = f"{MODELS_PREFIX}/{name}/{hashes['sha256']}"
            self.files.upload_dir(Path(tmp), prefix)
        record = {**metadata, "name": name, "version": 0, "created": _now(), **hashes}
        entry = ModelVersion.from_dict(record)
        stored = {k: v for k, v in entry.to_dict().items() if k not in ("name", "version")}
        tags = {str(k): str(v) for k, v in entry.tags.items()}
        tags.update({f"metric.{k}": f"{v:.6g}" for k, v in entry.metrics.items()})
        lineage = {
            "sha256": entry.sha256,
            "data_fingerprint": entry.data_fingerprint,
            "git_commit": entry.git_commit,
            "replaced": entry.replaced,
            "run_id": entry.run_id,
        }
        tags.update({k: str(v) for k, v in lineage.items() if v is not None})
        created = self.ml_client.models.create_or_update(
            Model(
                name=name,
                path=self.files.uri(prefix),
                type="custom_model",
                description=f"diabetes-mlops model, run {entry.run_id}",
                tags=tags,
                properties={METADATA_PROPERTY: json.dumps(stored, sort_keys=True)},
            )
        )
        return self._to_version(created)

    def _update_tags(self, entity: Model, tags: dict[str, str]) -> None:
        """Replace a version's tags: a PUT of the same version, which Azure ML allows for tags only."""
        entity.tags = tags
        self.ml_client.models.create_or_update(entity)

    def _move(self, name: str, alias: str, target: Model, action: str) -> None:
        """Point ``alias`` at ``target``: write the target first so an interruption leaves a resolvable state."""
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias {alias!r}; aliases are {', '.join(ALIASES)}")
        current = self._holders(name).get(alias)
        moved = _now()
        tags = dict(target.tags or {})
        tags[_alias_tag(alias)] = moved
        if action == "promote" and current is not None and current.version != target.version:
            tags[f"{_alias_tag(alias)}.previous"] = str(current.version)
        log = tags.get(f"{_alias_tag(alias)}.log")
        tags[f"{_alias_tag(alias)}.log"] = f"{log};{action}@{moved}" if log else f"{action}@{moved}"
        self._update_tags(target, tags)
        if current is not None and current.version != target.version:
            stale = {k: v for k, v in (current.tags or {}).items() if k != _alias_tag(alias)}
            self._update_tags(current, stale)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self._move(name, alias, self._entity(name, version), "promote")

    def previous(self, name: str, alias: str) -> int | None:
        """The version ``alias`` replaced when it moved onto its current holder."""
        current = self._holders(name).get(alias)
        previous = (current.tags or {}).get(f"{_alias_tag(alias)}.previous") if current is not None else None
        return int(previous) if previous is not None else None

    def rollback(self, name: str, alias: str) -> ModelVersion:
        """Point ``alias`` back at the version it replaced when it moved onto its current holder."""
        previous = self.previous(name, alias)
        if previous is None:
            raise RegistryError(f"alias {alias!r} of model {name!r} has no earlier version to roll back to")
        target = self._entity(name, previous)
        self._move(name, alias, target, "rollback")
        return self._to_version(target)

    def history(self, name: str) -> list[dict[str, object]]:
        """Every alias move, oldest first, rebuilt from the ``alias.<alias>.log`` tags of all versions."""
        moves: list[dict[str, Any]] = []
        for entity in self._entities(name):
            for alias in ALIASES:
                for item in filter(None, (entity.tags or {}).get(f"{_alias_tag(alias)}.log", "").split(";")):
                    action, _, time = item.partition("@")
                    moves.append({"time": time, "alias": alias, "version": _number(entity), "action": action})
        moves.sort(key=lambda m: m["time"])
        holder: dict[str, int | None] = {}
        for move in moves:
            move["previous"] = holder.get(move["alias"])
            holder[move["alias"]] = move["version"]
        return moves
