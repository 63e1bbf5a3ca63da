"""`azure check-access` on the simulated Azure: the kit's list of needed role assignments is the documented one,
and with one of them removed the check, a release and a schedule each fail at once naming it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from diabetes_mlops.azure.clients import ml_client
from diabetes_mlops.azure.compute import ensure_compute
from diabetes_mlops.config import Settings
from tests.conftest import CliResult
from tests.serving.conftest import register_model
from tests.simazure.entra import Principal
from tests.simazure.service import DOCUMENTED_ROLES, Scopes, SimAzure


@pytest.fixture
def agent_env(simazure: SimAzure, simazure_env: dict[str, str], azure_settings: Settings) -> dict[str, str]:
    """A build agent's environment with the scoring logs' account set, after the compute cluster exists (its
    identity's roles are checked only then)."""
    ensure_compute(ml_client(azure_settings), azure_settings)
    return {"DIABETES_MLOPS_AZURE_STORAGE_ACCOUNT_URL": simazure.blob_url}


def holders(simazure: SimAzure) -> dict[str, Principal]:
    scoring = simazure.identities.principal(Scopes.scoring_identity)
    assert scoring is not None
    return {"jenkins": simazure.principal, "compute": simazure.entra.compute_identity, "scoring": scoring}


@contextmanager
def without(simazure: SimAzure, who: str, role: str) -> Iterator[Principal]:
    """The role taken from ``who`` for the block, then given back at the documented scope."""
    principal = holders(simazure)[who]
    (scope,) = [s for w, r, s in DOCUMENTED_ROLES if (w, r) == (who, role)]
    simazure.rbac.unassign(principal, role)
    try:
        yield principal
    finally:
        simazure.rbac.assign(principal, role, scope)


def test_the_kits_needs_are_the_documented_roles_and_all_are_granted(
    simazure: SimAzure, agent_env: dict[str, str], cli: Callable[..., CliResult]
) -> None:
    done = cli("--json", "azure", "check-access", env=agent_env, timeout=300)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    ids = {p.object_id: who for who, p in holders(simazure).items()}
    listed = {(ids[n["principal_id"]], n["role"], n["scope"].lower()) for n in found["needs"]}
    assert listed == {(who, role, scope.lower()) for who, role, scope in DOCUMENTED_ROLES}
    assert found["missing"] == 0 and all(n["granted"] for n in found["needs"]), done.stdout


def test_a_missing_role_is_named_with_the_command_that_grants_it(
    simazure: SimAzure, agent_env: dict[str, str], cli: Callable[..., CliResult]
) -> None:
    with without(simazure, "scoring", "Storage Blob Data Contributor") as scoring:
        done = cli("azure", "check-access", env=agent_env, timeout=300)
    assert done.returncode == 1
    assert "1 role assignments missing" in done.stderr
    assert "the scoring identity needs Storage Blob Data Contributor on " + Scopes.storage in done.stdout
    assert (
        f"az role assignment create --assignee-object-id {scoring.object_id} --assignee-principal-type "
        f'ServicePrincipal --role "Storage Blob Data Contributor" --scope {Scopes.storage}'
    ) in done.stdout


def test_a_release_without_acrpush_fails_before_it_builds_anything(
    simazure: SimAzure, agent_env: dict[str, str], azure_settings: Settings, cli: Callable[..., CliResult]
) -> None:
    register_model(azure_settings)
    runs_before = len(simazure.registries.runs)
    started = time.monotonic()
    with without(simazure, "jenkins", "AcrPush"):
        done = cli("release", "--target", "azure", "--model", "1", env=agent_env, timeout=300)
    assert done.returncode == 1
    assert "release needs role assignments that are missing" in done.stderr
    assert f"needs AcrPush on {Scopes.registry}" in done.stderr and '--role "AcrPush"' in done.stderr
    assert len(simazure.registries.runs) == runs_before  # no image build was asked for
    assert time.monotonic() - started < 60


def test_a_schedule_whose_compute_cannot_write_the_datastore_fails_at_once(
    simazure: SimAzure, agent_env: dict[str, str], cli: Callable[..., CliResult]
) -> None:
    schedules_before = set(simazure.workspace.schedules)
    with without(simazure, "compute", "Storage Blob Data Contributor"):
        done = cli("azure", "schedule", env=agent_env, timeout=300)
    assert done.returncode == 1
    assert f"compute cpu-cluster's identity needs Storage Blob Data Contributor on {Scopes.datastore}" in done.stderr
    assert set(simazure.workspace.schedules) == schedules_before
