"""Azure RBAC: built-in role definitions (roles.json, with its provenance in roles-SOURCE.md), role assignments
as ``Microsoft.Authorization/roleAssignments`` resources at any scope, and the check every surface makes.

An assignment at a scope holds at every scope below it (subscription > resource group > resource > child). A
role permits an action when one of its ``actions`` (or, on a data plane, ``dataActions``) matches it and none of
its ``notActions`` (``notDataActions``) does; ``*`` matches any run of characters, and case never matters.
A new principal holds nothing.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakes import Call, FakeTransport

    from tests.simazure.entra import Entra, Principal

ROLES_FILE = Path(__file__).with_name("roles.json")
ASSIGNMENT = r"(?P<scope>/.*)?/providers/Microsoft\.Authorization/roleAssignments/(?P<id>[^/]+)"
ASSIGNMENTS = r"(?P<scope>/.*)?/providers/Microsoft\.Authorization/roleAssignments"
DEFINITION = r"(?P<scope>/.*)?/providers/Microsoft\.Authorization/roleDefinitions/(?P<id>[^/]+)"
VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
ASSIGNED_TO = re.compile(r"(?:assignedTo\(|principalId eq )'(?P<oid>[^']+)'")


@dataclass(frozen=True)
class Role:
    """A built-in role: its name, id (a GUID) and permissions."""

    name: str
    id: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    data_actions: tuple[str, ...]
    not_data_actions: tuple[str, ...]

    def permits(self, action: str, data: bool) -> bool:
        allowed, denied = (self.data_actions, self.not_data_actions) if data else (self.actions, self.not_actions)
        return any(_pattern(a).fullmatch(action) for a in allowed) and not any(
            _pattern(a).fullmatch(action) for a in denied
        )


@cache
def _pattern(action: str) -> re.Pattern[str]:
    """``*`` matches any run of characters, and a ``/*/`` segment also none: ``workspaces/*/read`` covers
    ``workspaces/read``, as AzureML Data Scientist reads its workspace and (by its notActions
    ``computes/*/write``) may not create a compute, as its description says."""
    parts = [".*".join(map(re.escape, part.split("*"))) for part in action.split("/*/")]
    return re.compile("/(?:.*/)?".join(parts), re.IGNORECASE)


def builtin_roles() -> dict[str, Role]:
    """The built-in roles this cloud knows, by name."""
    found = json.loads(ROLES_FILE.read_text())["roles"]
    return {
        name: Role(
            name,
            body["id"],
            tuple(body.get("actions", ())),
            tuple(body.get("notActions", ())),
            tuple(body.get("dataActions", ())),
            tuple(body.get("notDataActions", ())),
        )
        for name, body in found.items()
    }


def within(scope: str, assigned: str) -> bool:
    """Whether ``scope`` is ``assigned`` or below it."""
    scope, assigned = scope.rstrip("/").lower(), assigned.rstrip("/").lower()
    return scope == assigned or scope.startswith(assigned + "/")


def arm_action(method: str, path: str) -> tuple[str, str] | None:
    """The operation (``Microsoft.X/type/child/verb``) and scope (the resource's id) of an ARM request; None for
    paths outside subscriptions."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        return None
    lowered = [p.lower() for p in parts]
    if "providers" in lowered:
        at = len(lowered) - 1 - lowered[::-1].index("providers")
        namespace, tail = parts[at + 1], parts[at + 2 :]
    else:  # the subscription or a resource group itself
        namespace, tail = "Microsoft.Resources", parts
    if method == "POST":  # .../{type}/{name}/{action}: an action on the resource it is posted to
        return "/".join([namespace, *tail[:-1][0::2], tail[-1], "action"]), "/" + "/".join(parts[:-1])
    scope = parts if len(tail) % 2 == 0 else parts[:-1]  # a collection's scope is its parent
    return "/".join([namespace, *tail[0::2], VERBS.get(method, method.lower())]), "/" + "/".join(scope)


class Authorization:
    """Role assignments of one tenant, by id; ``permits`` is what every surface asks."""

    def __init__(self, entra: Entra, roles: dict[str, Role] | None = None) -> None:
        self.entra = entra
        self.roles = roles if roles is not None else builtin_roles()
        self._by_id = {role.id: role for role in self.roles.values()}
        self.assignments: dict[str, dict[str, Any]] = {}

    def assign(self, principal: Principal, role: str, scope: str) -> dict[str, Any]:
        """Assign ``role`` (by name) to ``principal`` at ``scope``, as ``az role assignment create`` does."""
        assignment_id = str(uuid.uuid4())
        return self._put(scope, assignment_id, principal.object_id, self.roles[role].id)

    def unassign(self, principal: Principal, role: str) -> None:
        """Remove every assignment of ``role`` to ``principal``."""
        wanted = self.roles[role].id
        for key, body in list(self.assignments.items()):
            props = body["properties"]
            if props["principalId"] == principal.object_id and props["roleDefinitionId"].endswith(wanted):
                del self.assignments[key]

    def permits(self, principal: Principal, action: str, scope: str, data: bool = False) -> bool:
        for body in self.assignments.values():
            props = body["properties"]
            if props["principalId"] != principal.object_id or not within(scope, props["scope"]):
                continue
            role = self._by_id.get(props["roleDefinitionId"].rsplit("/", 1)[-1])
            if role is not None and role.permits(action, data):
                return True
        return False

    def _put(self, scope: str, assignment_id: str, principal_id: str, role_id: str) -> dict[str, Any]:
        subscription = scope.split("/")[2]
        body = {
            "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{assignment_id}",
            "name": assignment_id,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": f"/subscriptions/{subscription}/providers/Microsoft.Authorization/"
                f"roleDefinitions/{role_id}",
                "principalId": principal_id,
                "principalType": "ServicePrincipal",
                "scope": scope,
            },
        }
        self.assignments[assignment_id] = body
        return copy.deepcopy(body)

    # --- routes -------------------------------------------------------------------------------------

    def install(self, t: FakeTransport) -> None:
        t.on("GET", ASSIGNMENTS, self._list)
        t.on("PUT", ASSIGNMENT, self._create)
        t.on("DELETE", ASSIGNMENT, self._delete)
        t.on("GET", DEFINITION, self._definition)

    def _list(self, call: Call) -> tuple[int, Any]:
        """Assignments at, above or below the scope (ARM's list for a scope); ``$filter`` by principal."""
        scope = call.path.split("/providers/Microsoft.Authorization/", 1)[0] or "/"
        match = ASSIGNED_TO.search(call.query.get("$filter", [""])[0])
        found = [
            copy.deepcopy(body)
            for body in self.assignments.values()
            if (within(scope, body["properties"]["scope"]) or within(body["properties"]["scope"], scope))
            and (match is None or body["properties"]["principalId"] == match.group("oid"))
        ]
        return 200, {"value": found}

    def _create(self, call: Call) -> tuple[int, Any]:
        props = (call.body or {}).get("properties") or {}
        role_id = str(props.get("roleDefinitionId", "")).rsplit("/", 1)[-1]
        if role_id not in self._by_id:
            return 400, {
                "error": {
                    "code": "RoleDefinitionDoesNotExist",
                    "message": "The specified role definition does not exist.",
                }
            }
        if not any(p.object_id == props.get("principalId") for p in self.entra.principals.values()):
            return 400, {
                "error": {
                    "code": "PrincipalNotFound",
                    "message": f"Principal {props.get('principalId')} does not exist in the directory "
                    f"{self.entra.tenant}.",
                }
            }
        scope, assignment_id = call.path.split("/providers/Microsoft.Authorization/roleAssignments/", 1)
        wanted = (props["principalId"], scope.lower(), role_id)
        for body in self.assignments.values():
            existing = body["properties"]
            if (existing["principalId"], existing["scope"].lower(), existing["roleDefinitionId"][-36:]) == wanted:
                return 409, {
                    "error": {"code": "RoleAssignmentExists", "message": "The role assignment already exists."}
                }
        return 201, self._put(scope, assignment_id, props["principalId"], role_id)

    def _delete(self, call: Call) -> tuple[int, Any]:
        body = self.assignments.pop(call.path.rsplit("/", 1)[-1], None)
        return (200, body) if body else (204, b"")

    def _definition(self, call: Call) -> tuple[int, Any]:
        role = self._by_id.get(call.path.rsplit("/", 1)[-1])
        if role is None:
            return 404, {
                "error": {"code": "RoleDefinitionDoesNotExist", "message": "The role definition does not exist."}
            }
        return 200, {
            "id": f"/providers/Microsoft.Authorization/roleDefinitions/{role.id}",
            "name": role.id,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {
                "roleName": role.name,
                "type": "BuiltInRole",
                "permissions": [
                    {
                        "actions": list(role.actions),
                        "notActions": list(role.not_actions),
                        "dataActions": list(role.data_actions),
                        "notDataActions": list(role.not_data_actions),
                    }
                ],
                "assignableScopes": ["/"],
            },
        }


def denial(principal: Principal, action: str, scope: str) -> tuple[int, Any]:
    """ARM's 403 for an action no assignment of the principal permits."""
    return 403, {
        "error": {
            "code": "AuthorizationFailed",
            "message": f"The client '{principal.client_id}' with object id '{principal.object_id}' does not have "
            f"authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access "
            "was recently granted, please refresh your credentials.",
        }
    }


def linked_denial(principal: Principal, action: str, scope: str, linked: str, linked_scope: str) -> tuple[int, Any]:
    """ARM's 403 when the principal may do ``action`` but not the ``linked`` action it implies (assigning an
    identity to a resource needs ``assign/action`` on the identity)."""
    return 403, {
        "error": {
            "code": "LinkedAuthorizationFailed",
            "message": f"The client '{principal.client_id}' with object id '{principal.object_id}' has permission to "
            f"perform action '{action}' on scope '{scope}'; however, it does not have permission to perform "
            f"action(s) '{linked}' on the linked scope(s) '{linked_scope}' (respectively) or the linked scope(s) "
            "are invalid.",
        }
    }
