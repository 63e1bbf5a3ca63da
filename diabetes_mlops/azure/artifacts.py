"""Files to and from the workspace's default datastore, through ``azure-storage-blob`` under our control.

The Azure ML SDK uploads local paths with a blob client of its own; we upload ourselves and hand Azure ML
``azureml://datastores/<name>/paths/<prefix>`` URIs, so every byte moved is ours to retry, test and report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.errors import MlopsError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import ContainerClient


class DatastoreFiles:
    """A folder tree under a prefix of one blob container that Azure ML knows as datastore ``datastore``."""

    def __init__(self, container: ContainerClient, datastore: str = "workspaceblobstore") -> None:
        self.container = container
        self.datastore = datastore

    @classmethod
    def from_workspace(cls, ml_client: MLClient, credential: TokenCredential) -> DatastoreFiles:
        """The workspace's default datastore, reached with the caller's identity (Storage Blob Data Contributor)."""
        from azure.storage.blob import ContainerClient

        store = ml_client.datastores.get_default()
        account_url = f"{store.protocol}://{store.account_name}.blob.{store.endpoint}"
        return cls(ContainerClient(account_url, store.container_name, credential=credential), store.name)

    def uri(self, prefix: str) -> str:
        """The Azure ML URI of a prefix, for model paths and job inputs and outputs."""
        return f"azureml://datastores/{self.datastore}/paths/{prefix.strip('/')}/"

    @staticmethod
    def prefix_of(uri: str) -> str:
        """The blob prefix in an ``azureml://...datastores/<name>/paths/<prefix>`` URI."""
        _, sep, prefix = uri.partition("/paths/")
        if not sep:
            raise MlopsError(f"not a datastore path: {uri}")
        return prefix.strip("/")

    def upload_dir(self, local_dir: Path, prefix: str) -> list[str]:
        """Upload every file under ``local_dir`` to ``prefix``; overwriting makes a retry safe."""
        names = []
        for path in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
            name = f"{prefix.strip('/')}/{path.relative_to(local_dir).as_posix()}"
            with open(path, "rb") as fh:
                self.container.upload_blob(name, fh, overwrite=True)
            names.append(name)
        return names

    def download_dir(self, prefix: str, local_dir: Path) -> list[Path]:
        """Download every blob under ``prefix`` into ``local_dir``, keeping the relative layout."""
        root = prefix.strip("/") + "/"
        paths = []
        for blob in self.container.list_blobs(name_starts_with=root):
            relative = blob.name[len(root) :]
            target = (Path(local_dir) / relative).resolve()
            if not relative or Path(local_dir).resolve() not in target.parents:
                continue  # a directory marker or a name escaping the folder: nothing to write
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                self.container.download_blob(blob.name).readinto(fh)
            paths.append(target)
        if not paths:
            raise MlopsError(f"nothing found under {self.uri(prefix)}")
        return paths
