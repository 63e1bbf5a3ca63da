"""Microsoft.ManagedIdentity: user-assigned identities as ARM resources, each a principal of Entra with no
secret, and their federated identity credentials (the issuer and subject whose tokens Entra exchanges)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from tests.simazure.resources import RG_PATH, not_found

if TYPE_CHECKING:
    from fakes import Call, FakeTransport

    from tests.simazure.entra import Entra, Principal

UAI_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
UAI = RG_PATH + r"/Microsoft\.ManagedIdentity/userAssignedIdentities/(?P<name>[^/]+)"
FIC = UAI + r"/federatedIdentityCredentials/(?P<fic>[^/]+)"
FIC_TYPE = f"{UAI_TYPE}/federatedIdentityCredentials"


class ManagedIdentities:
    """User-assigned identities by resource id (case-insensitive, as ARM compares ids)."""

    def __init__(self, entra: Entra, location: str) -> None:
        self.entra = entra
        self.location = location
        self.bodies: dict[str, dict[str, Any]] = {}
        self.principals: dict[str, Principal] = {}

    def create(self, resource_id: str, location: str | None = None) -> dict[str, Any]:
        """The identity at ``resource_id``, made (with a new principal) the first time; ARM's PUT is idempotent."""
        key = resource_id.lower()
        if key not in self.bodies:
            principal = self.entra.add_principal(secret=False)
            self.principals[key] = principal
            self.bodies[key] = {
                "id": resource_id,
                "name": resource_id.rstrip("/").rsplit("/", 1)[-1],
                "type": UAI_TYPE,
                "location": location or self.location,
                "tags": {},
                "properties": {
                    "tenantId": self.entra.tenant,
                    "principalId": principal.object_id,
                    "clientId": principal.client_id,
                },
            }
        return copy.deepcopy(self.bodies[key])

    def principal(self, resource_id: str) -> Principal | None:
        return self.principals.get(resource_id.lower())

    def federate(self, resource_id: str, name: str, issuer: str, subject: str) -> dict[str, Any]:
        """A federated credential on the identity: Entra exchanges tokens of ``issuer`` for ``subject``."""
        principal = self.principals[resource_id.lower()]
        principal.federated[name] = (issuer, subject)
        return self._credential(resource_id, name)

    def _credential(self, resource_id: str, name: str) -> dict[str, Any]:
        issuer, subject = self.principals[resource_id.lower()].federated[name]
        return {
            "id": f"{self.bodies[resource_id.lower()]['id']}/federatedIdentityCredentials/{name}",
            "name": name,
            "type": FIC_TYPE,
            "properties": {"issuer": issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"]},
        }

    def install(self, t: FakeTransport) -> None:
        t.on("PUT", UAI, self._put)
        t.on("GET", UAI, self._get)
        t.on("PUT", FIC, self._put_credential)
        t.on("GET", FIC, self._get_credential)
        t.on("GET", UAI + r"/federatedIdentityCredentials", self._list_credentials)

    def _put(self, call: Call) -> tuple[int, Any]:
        existed = call.path.lower() in self.bodies
        body = self.create(call.path, (call.body or {}).get("location"))
        return (200 if existed else 201), body

    def _get(self, call: Call) -> tuple[int, Any]:
        body = self.bodies.get(call.path.lower())
        return (200, copy.deepcopy(body)) if body else not_found(UAI_TYPE, call.path.rsplit("/", 1)[-1])

    def _owner(self, call: Call) -> str:
        return call.path.split("/federatedIdentityCredentials", 1)[0]

    def _put_credential(self, call: Call) -> tuple[int, Any]:
        owner, name = self._owner(call), call.path.rsplit("/", 1)[-1]
        if owner.lower() not in self.principals:
            return not_found(UAI_TYPE, owner.rsplit("/", 1)[-1])
        props = (call.body or {}).get("properties") or {}
        if (
            props.get("audiences") != ["api://AzureADTokenExchange"]
            or not props.get("issuer")
            or not props.get("subject")
        ):
            return 400, {
                "error": {
                    "code": "BadRequest",
                    "message": "A federated identity credential needs issuer, subject and the audience "
                    "api://AzureADTokenExchange.",
                }
            }
        return 200, self.federate(owner, name, props["issuer"], props["subject"])

    def _get_credential(self, call: Call) -> tuple[int, Any]:
        owner, name = self._owner(call), call.path.rsplit("/", 1)[-1]
        principal = self.principals.get(owner.lower())
        if principal is None or name not in principal.federated:
            return not_found(FIC_TYPE, name)
        return 200, self._credential(owner, name)

    def _list_credentials(self, call: Call) -> tuple[int, Any]:
        owner = self._owner(call)
        principal = self.principals.get(owner.lower())
        if principal is None:
            return not_found(UAI_TYPE, owner.rsplit("/", 1)[-1])
        return 200, {"value": [self._credential(owner, name) for name in principal.federated]}
