"""Fixtures of the Azure tests: Azurite, a fake Azure ML workspace, clients with a fake credential."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from azurite import Azurite
from fake_azureml import RG, SUB, WS, FakeAzureML
from fakes import FakeCredential


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = Azurite(tmp_path_factory.mktemp("azurite"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def container(azurite: Azurite):
    """A fresh container in the shared Azurite."""
    from azure.storage.blob import ContainerClient

    client = ContainerClient.from_connection_string(azurite.connection_string, f"c{uuid.uuid4().hex[:12]}")
    client.create_container()
    return client


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()


@pytest.fixture
def workspace() -> FakeAzureML:
    return FakeAzureML()


@pytest.fixture
def ml_client(workspace: FakeAzureML, credential: FakeCredential):
    from azure.ai.ml import MLClient

    return MLClient(credential, SUB, RG, WS, transport=workspace.transport, enable_telemetry=False, polling_interval=0)
