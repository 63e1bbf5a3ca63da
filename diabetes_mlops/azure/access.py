"""Which Azure role assignments the kit's principals need for the current settings, and which of them are missing.

docs/azure.md's roles table, as code. Each need is one built-in role for one principal at one scope: Jenkins'
principal (whoever the credential is), the compute cluster's system-assigned identity and the scoring identity
(``azure_aci_identity``, used by ACI and, through workload identity, by AKS). A need is met by an assignment of
that role at the scope or above it; for a control-plane role also by Owner or Contributor there (they hold every
action), for a data-plane role only by the broader data roles named in ``BROADER``. Reading assignments needs
``Microsoft.Authorization/roleAssignments/read`` at the scope (the ACI role at the resource group has it); where
it is refused the need is reported as unknown, with the reason.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from diabetes_mlops.azure.clients import cloud, default_credential, require, with_workspace
from diabetes_mlops.errors import ConfigError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.core.credentials import TokenCredential

    from diabetes_mlops.config import Settings

# Built-in role ids are the same in every tenant and cloud (tests/simazure/roles.json has their definitions).
ROLE_IDS = {
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "Azure Container Instances Contributor Role": "5d977122-f97e-4b4d-a52f-6b43003ddb4d",
    "Azure Kubernetes Service Cluster Admin Role": "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8",
    "Azure Kubernetes Service Cluster User Role": "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
    "Azure Kubernetes Service RBAC Admin": "3498e952-d568-435e-9b2c-8d77e338d7f7",
    "Azure Kubernetes Service RBAC Writer": "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb",
    "AzureML Compute Operator": "e503ece1-11d0-4e8e-8e2c-7a6c3bf38815",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "Container Registry Tasks Contributor": "fb382eab-e894-4461-af04-94435c366c3f",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Managed Identity Operator": "f1a07417-d97a-45cb-824c-7a7467783830",
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
}
CONTROL_PLANE_ROLES = ("Owner", "Contributor")
DATA_ROLES = (
    "Azure Kubernetes Service RBAC Writer",
    "Key Vault Secrets Officer",
    "Storage Blob Data Contributor",
    "Storage Blob Data Reader",
)
# A data role's need is met by these too: each holds every data action of the role it stands for.
BROADER = {
    "Storage Blob Data Reader": ("Storage Blob Data Contributor",),
    "Azure Kubernetes Service RBAC Writer": ("Azure Kubernetes Service RBAC Admin",),
    "AcrPull": ("AcrPush",),
}
PURPOSES = ("release", "schedule", "drift")


class AccessMissing(ConfigError):
    """A principal lacks a role assignment the kit needs for what it was asked to do."""


@dataclass(frozen=True)
class Need:
    """One role ``holder`` needs at ``scope`` for ``purpose``, and whether it is there (None: unknown, ``note``)."""

    purpose: str
    holder: str
    principal_id: str
    role: str
    scope: str
    why: str
    granted: bool | None = None
    note: str = ""

    @property
    def grant(self) -> str:
        """The one command that grants it."""
        return (
            f"az role assignment create --assignee-object-id {self.principal_id} --assignee-principal-type "
            f'ServicePrincipal --role "{self.role}" --scope {self.scope}'
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "grant": self.grant}


def object_id(credential: TokenCredential, scope: str) -> str:
    """The object id of whoever ``credential`` signs in as: the ``oid`` claim of its own token for ``scope``."""
    token = credential.get_token(scope).token
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["oid"])


def _group_scope(settings: Settings, group: str | None = None) -> str:
    subscription = require(settings.azure, "subscription_id")
    return f"/subscriptions/{subscription}/resourceGroups/{group or require(settings.azure, 'resource_group')}"


def _logs_account(settings: Settings) -> str | None:
    """The scoring logs' storage account id: the account ``azure_storage_account_url`` names, in the resource group."""
    url = settings.azure.storage_account_url
    if not url:
        return None
    account = url.split("//", 1)[-1].split(".", 1)[0]
    return f"{_group_scope(settings)}/providers/Microsoft.Storage/storageAccounts/{account}"


def needs(
    settings: Settings,
    workspace: MLClient,
    credential: TokenCredential,
    jenkins: str,
    purposes: Iterable[str] = PURPOSES,
    **client_kwargs: Any,
) -> list[Need]:
    """Every assignment the settings call for, for each of ``purposes``, as docs/azure.md lists them."""
    from azure.core.exceptions import ResourceNotFoundError

    settings = with_workspace(settings)
    az, chosen = settings.azure, set(purposes)
    group = _group_scope(settings)
    logs = _logs_account(settings)
    me = "Jenkins' principal"
    wanted: list[tuple[str, str, str, str, str, str]] = []  # purpose, holder, principal, role, scope, why
    if "schedule" in chosen:
        ws = f"{group}/providers/Microsoft.MachineLearningServices/workspaces/{require(az, 'workspace')}"
        storage = workspace.workspaces.get(workspace.workspace_name).storage_account
        datastore = f"{storage}/blobServices/default/containers/{workspace.datastores.get_default().container_name}"
        wanted += [
            ("schedule", me, jenkins, "AzureML Data Scientist", ws, "jobs, models, pipelines and schedules"),
            ("schedule", me, jenkins, "AzureML Compute Operator", ws, "create the compute cluster"),
            ("schedule", me, jenkins, "Storage Blob Data Contributor", datastore, "upload the wheel and inputs"),
        ]
        try:
            compute = workspace.compute.get(az.compute_name)
            principal = compute.identity.principal_id if compute.identity else None
        except ResourceNotFoundError:
            principal = None
        if principal:
            holder = f"compute {az.compute_name}'s identity"
            wanted.append(("schedule", holder, principal, "AzureML Data Scientist", ws, "evaluate and register steps"))
            wanted.append(("schedule", holder, principal, "Storage Blob Data Contributor", datastore, "step outputs"))
    if "release" in chosen:
        scoring = _scoring_principal(settings, credential, **client_kwargs)
        if az.acr_name:
            registry = f"{group}/providers/Microsoft.ContainerRegistry/registries/{az.acr_name}"
            wanted.append(("release", me, jenkins, "AcrPush", registry, "push the scoring image"))
            wanted.append(("release", me, jenkins, "Container Registry Tasks Contributor", registry, "ACR build runs"))
            wanted.append(("release", me, jenkins, "Azure Container Instances Contributor Role", group, "QA group"))
            if scoring:
                wanted.append(("release", "the scoring identity", scoring, "AcrPull", registry, "ACI pulls the image"))
        if az.aci_identity:
            identity = az.aci_identity
            wanted.append(("release", me, jenkins, "Managed Identity Operator", identity, "give ACI the identity"))
        if az.aks_cluster:
            cluster = (
                f"{_group_scope(settings, az.aks_resource_group)}/providers/Microsoft.ContainerService/"
                f"managedClusters/{az.aks_cluster}"
            )
            wanted.append(("release", me, jenkins, "Azure Kubernetes Service Cluster User Role", cluster, "kubeconfig"))
            wanted.append(("release", me, jenkins, "Azure Kubernetes Service RBAC Writer",
                           f"{cluster}/namespaces/{az.aks_namespace}", "apply the deployment"))  # fmt: skip
        if az.key_vault:
            vault = f"{group}/providers/Microsoft.KeyVault/vaults/{az.key_vault}"
            wanted.append(("release", me, jenkins, "Key Vault Secrets Officer", vault, "each environment's key"))
        if logs and scoring:
            wanted.append(("release", "the scoring identity", scoring, "Storage Blob Data Contributor", logs,
                           "write the scoring logs"))  # fmt: skip
    if "drift" in chosen and logs:
        wanted.append(("drift", me, jenkins, "Storage Blob Data Reader", logs, "read the scoring logs"))
    return [Need(*row) for row in wanted]


def _scoring_principal(settings: Settings, credential: TokenCredential, **client_kwargs: Any) -> str | None:
    """The principal id of ``azure_aci_identity`` (a user-assigned identity's resource id); None when unset."""
    identity = settings.azure.aci_identity
    if not identity:
        return None
    from azure.mgmt.msi import ManagedServiceIdentityClient

    parts = identity.strip("/").split("/")
    client = ManagedServiceIdentityClient(
        credential, parts[1], **{**cloud(settings).arm_client_kwargs(), **client_kwargs}
    )
    return str(client.user_assigned_identities.get(parts[3], parts[-1]).principal_id)


def _within(scope: str, assigned: str) -> bool:
    scope, assigned = scope.rstrip("/").lower(), assigned.rstrip("/").lower()
    return scope == assigned or scope.startswith(assigned + "/")


def _accepted(role: str) -> set[str]:
    names = {role, *BROADER.get(role, ())}
    if role not in DATA_ROLES:
        names |= set(CONTROL_PLANE_ROLES)
    return {ROLE_IDS[name] for name in names}


def check(settings: Settings, needs_: list[Need], credential: TokenCredential, **client_kwargs: Any) -> list[Need]:
    """Each need with ``granted`` filled in from the principal's role assignments at its scope."""
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.authorization import AuthorizationManagementClient

    settings = with_workspace(settings)
    subscription = require(settings.azure, "subscription_id")
    kwargs = {**cloud(settings).arm_client_kwargs(), **client_kwargs}
    client = AuthorizationManagementClient(credential, subscription, **kwargs)
    held: dict[tuple[str, str], set[str] | str] = {}  # (principal, scope) -> its role ids there, or why unknown
    out = []
    for need in needs_:
        key = (need.principal_id, need.scope)
        if key not in held:  # one read per principal and scope, however many roles it needs there
            try:
                assignments = client.role_assignments.list_for_scope(
                    need.scope, filter=f"assignedTo('{need.principal_id}')"
                )
                held[key] = {
                    (a.role_definition_id or "").rsplit("/", 1)[-1]
                    for a in assignments
                    if a.principal_id == need.principal_id and _within(need.scope, a.scope or "")
                }
            except HttpResponseError as exc:
                held[key] = f"cannot read its assignments: {exc.reason}"
        found = held[key]
        if isinstance(found, str):
            out.append(Need(**{**asdict(need), "note": found}))
        else:
            out.append(Need(**{**asdict(need), "granted": bool(found & _accepted(need.role))}))
    return out


def check_access(
    settings: Settings,
    purposes: Iterable[str] = PURPOSES,
    credential: TokenCredential | None = None,
    **client_kwargs: Any,
) -> list[Need]:
    """Every assignment ``purposes`` need under these settings, each marked granted, missing or unknown."""
    from diabetes_mlops.azure.clients import ml_client

    credential = credential or default_credential(settings)
    workspace = ml_client(settings, credential, **client_kwargs)
    jenkins = object_id(credential, cloud(settings).arm_scope)
    found = needs(settings, workspace, credential, jenkins, purposes, **client_kwargs)
    return check(settings, found, credential, **client_kwargs)


def report(found: list[Need]) -> str:
    """The missing (and unknown) needs, each with the command that grants it; "" when all are granted."""
    lines = []
    for need in found:
        if need.granted:
            continue
        state = f"unknown ({need.note})" if need.granted is None else "missing"
        lines.append(f"- {need.holder} needs {need.role} on {need.scope} ({need.why}): {state}\n    {need.grant}")
    return "\n".join(lines)


def require_access(
    settings: Settings, purpose: str, credential: TokenCredential | None = None, **client_kwargs: Any
) -> None:
    """Fail fast, naming every missing assignment and its command, before ``purpose`` starts (and 403s midway);
    nothing with ``azure_check_access`` off."""
    if not settings.azure.check_access:
        return
    found = check_access(settings, (purpose,), credential, **client_kwargs)
    if any(need.granted is False for need in found):
        raise AccessMissing(f"{purpose} needs role assignments that are missing:\n{report(found)}")
