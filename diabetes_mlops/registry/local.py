"""The embedded registry: a directory of versions that appear only whole, by an atomic rename.

Layout under the root, for each model name::

    <name>/<version>/model.skops     the model, written with skops
    <name>/<version>/affine.json     its weights and bias, when it is a StandardScaler + Ridge pipeline
    <name>/<version>/metadata.json   ModelVersion, with the sha256 of model.skops and of affine.json
    <name>/aliases.json              {"champion": 3, "production": 2}
    <name>/history.jsonl             one line per alias move
    <name>/.lock                     taken while a version number is chosen or an alias moves
    <name>/.incoming-*/              a version being written; never listed, never loaded
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from diabetes_mlops.artifacts import METADATA_FILE, MODEL_FILE, load_model, save_version_files
from diabetes_mlops.errors import RegistryError
from diabetes_mlops.files import write_atomic
from diabetes_mlops.registry.base import ALIASES, ModelVersion, VersionRef, unresolved

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

LOCK_TIMEOUT_SECONDS = 60


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalRegistry:
    """A ``Registry`` on the local file system, safe for concurrent processes and for crashes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _model_dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise RegistryError(f"invalid model name {name!r}")
        return self.root / name

    def _lock(self, name: str) -> FileLock:
        model_dir = self._model_dir(name)
        model_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(model_dir / ".lock", timeout=LOCK_TIMEOUT_SECONDS)

    def _versions(self, name: str) -> list[int]:
        model_dir = self._model_dir(name)
        if not model_dir.is_dir():
            return []
        return sorted(int(p.name) for p in model_dir.iterdir() if p.name.isdigit())

    def register(self, name: str, model: Pipeline, metadata: dict[str, object]) -> ModelVersion:
        """Write the model, its affine map and its metadata aside, then make them version N+1 in one rename."""
        model_dir = self._model_dir(name)
        model_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=model_dir, prefix=".incoming-"))
        hashes = save_version_files(model, staging)
        for written in staging.iterdir():
            with open(written, "rb") as fh:
                os.fsync(fh.fileno())
        with self._lock(name):
            versions = self._versions(name)
            number = (versions[-1] + 1) if versions else 1
            entry = ModelVersion.from_dict({**metadata, "name": name, "version": number, "created": _now(), **hashes})
            (staging / METADATA_FILE).write_text(json.dumps(entry.to_dict(), indent=2, sort_keys=True))
            with open(staging / METADATA_FILE, "rb") as fh:
                os.fsync(fh.fileno())
            os.rename(staging, model_dir / str(number))
            _fsync_dir(model_dir)
        return entry

    def list_versions(self, name: str) -> list[ModelVersion]:
        return [self._read(name, v) for v in self._versions(name)]

    def _read(self, name: str, version: int) -> ModelVersion:
        path = self._model_dir(name) / str(version) / METADATA_FILE
        try:
            return ModelVersion.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise RegistryError(f"model {name!r} has no version {version}") from None

    def aliases(self, name: str) -> dict[str, int]:
        path = self._model_dir(name) / "aliases.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def resolve(self, name: str, ref: VersionRef) -> int:
        """The version number a reference names: a number, an alias, or ``latest``."""
        if isinstance(ref, int):
            return ref
        if ref == "latest":
            versions = self._versions(name)
            if not versions:
                raise unresolved(name, ref)
            return versions[-1]
        aliases = self.aliases(name)
        if ref not in aliases:
            raise unresolved(name, ref)
        return aliases[ref]

    def get(self, name: str, ref: VersionRef) -> ModelVersion:
        return self._read(name, self.resolve(name, ref))

    def load(self, name: str, ref: VersionRef) -> Pipeline:
        """The model of a version, after its sha256 is checked against the recorded one."""
        entry = self.get(name, ref)
        return load_model(self._model_dir(name) / str(entry.version) / MODEL_FILE, entry.sha256)

    def version_dir(self, name: str, ref: VersionRef) -> Path:
        """The directory holding the version's ``model.skops``, ``metadata.json`` and any ``affine.json``."""
        return self._model_dir(name) / str(self.get(name, ref).version)

    def history(self, name: str) -> list[dict[str, object]]:
        path = self._model_dir(name) / "history.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def _move(self, name: str, alias: str, version: int, action: str) -> None:
        """Point ``alias`` at ``version`` and append the move to the history; caller holds the lock."""
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias {alias!r}; aliases are {', '.join(ALIASES)}")
        if version not in self._versions(name):
            raise RegistryError(f"model {name!r} has no version {version}")
        model_dir = self._model_dir(name)
        aliases = self.aliases(name)
        previous = aliases.get(alias)
        aliases[alias] = version
        record = {"time": _now(), "alias": alias, "version": version, "previous": previous, "action": action}
        with open(model_dir / "history.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        write_atomic(model_dir / "aliases.json", json.dumps(aliases, indent=2, sort_keys=True).encode())

    def set_alias(self, name: str, alias: str, version: int) -> None:
        with self._lock(name):
            self._move(name, alias, version, "promote")

    def previous(self, name: str, alias: str) -> int | None:
        stack = self._alias_stack(name, alias)
        return stack[-2] if len(stack) > 1 else None

    def rollback(self, name: str, alias: str) -> ModelVersion:
        """Point ``alias`` back at the version it held before its current promotion."""
        with self._lock(name):
            version = self.previous(name, alias)
            if version is None:
                raise RegistryError(f"alias {alias!r} of model {name!r} has no earlier version to roll back to")
            self._move(name, alias, version, "rollback")
        return self._read(name, version)

    def _alias_stack(self, name: str, alias: str) -> list[int]:
        """The versions an alias held, oldest first, with rolled-back promotions removed."""
        stack: list[int] = []
        for record in self.history(name):
            if record["alias"] != alias:
                continue
            if record["action"] == "rollback":
                stack.pop()
            elif not stack or stack[-1] != record["version"]:
                stack.append(int(record["version"]))  # type: ignore[call-overload]
        return stack
