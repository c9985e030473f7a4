"""Who is calling, and what their groups allow. The one permission table of the CRM."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeGuard

from crm_core.errors import Forbidden, Unauthorized

TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_TENANT_RE = re.compile(TENANT_ID_PATTERN)


def is_tenant_id(value: object) -> TypeGuard[str]:
    """Whether `value` is a tenant id as tokens and tags carry it."""
    return isinstance(value, str) and _TENANT_RE.match(value) is not None


class Role(StrEnum):
    ADMIN = "admin"
    SALES = "sales"
    MARKETING = "marketing"
    SUPPORT = "support"
    VIEWER = "viewer"


class Action(StrEnum):
    CONTACT_READ = "contacts:read"
    CONTACT_CREATE = "contacts:create"
    CONTACT_UPDATE = "contacts:update"
    # Marketing may change only a contact's tags and email consent.
    CONTACT_UPDATE_MARKETING = "contacts:update-marketing-fields"
    CONTACT_DELETE = "contacts:delete"
    CONTACT_MERGE = "contacts:merge"
    COMPANY_READ = "companies:read"
    COMPANY_WRITE = "companies:write"
    COMPANY_DELETE = "companies:delete"
    ACTIVITY_READ = "activities:read"
    # Log activities on contacts. Changing or deleting one also takes its author or an admin
    # (a task's assignee may change its status): the activity store checks who.
    ACTIVITY_WRITE = "activities:write"
    # Lead sources hold the secrets that let anyone post leads: admins only, reads included.
    LEAD_SOURCE_ADMIN = "lead-sources:admin"
    SCORING_READ = "scoring:read"
    # The scoring model decides whom sales calls first: admins and marketing set it.
    SCORING_WRITE = "scoring:write"
    # Segments and campaigns: every role reads; admins and marketing define and send.
    CAMPAIGN_READ = "campaigns:read"
    CAMPAIGN_WRITE = "campaigns:write"
    # Deals: every role reads; sales and admins create, move and delete them. Pipelines and
    # the currencies' rates shape every forecast: admins only.
    DEAL_READ = "deals:read"
    DEAL_WRITE = "deals:write"
    PIPELINE_ADMIN = "pipelines:admin"
    # Support cases: every role reads; support and admins work them (replies, notes,
    # statuses). Queues and the SLA policy decide who answers and by when: admins only.
    CASE_READ = "cases:read"
    CASE_WRITE = "cases:write"
    CASE_ADMIN = "cases:admin"
    REPORT_READ = "reports:read"
    REPORT_ADMIN = "reports:admin"


MARKETING_CONTACT_FIELDS = frozenset({"tags", "email_consent"})

_READ = {
    Action.CONTACT_READ,
    Action.COMPANY_READ,
    Action.ACTIVITY_READ,
    Action.SCORING_READ,
    Action.CAMPAIGN_READ,
    Action.DEAL_READ,
    Action.CASE_READ,
    Action.REPORT_READ,
}
_WRITE = {
    Action.CONTACT_CREATE,
    Action.CONTACT_UPDATE,
    Action.CONTACT_UPDATE_MARKETING,
    Action.COMPANY_WRITE,
    Action.DEAL_WRITE,
}
PERMISSIONS: Mapping[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset(_READ),
    Role.SUPPORT: frozenset(_READ | {Action.ACTIVITY_WRITE, Action.CASE_WRITE}),
    Role.MARKETING: frozenset(
        _READ
        | {
            Action.CONTACT_UPDATE_MARKETING,
            Action.ACTIVITY_WRITE,
            Action.SCORING_WRITE,
            Action.CAMPAIGN_WRITE,
        }
    ),
    Role.SALES: frozenset(_READ | _WRITE | {Action.ACTIVITY_WRITE}),
    Role.ADMIN: frozenset(
        _READ
        | _WRITE
        | {
            Action.ACTIVITY_WRITE,
            Action.CONTACT_DELETE,
            Action.CONTACT_MERGE,
            Action.COMPANY_DELETE,
            Action.LEAD_SOURCE_ADMIN,
            Action.SCORING_WRITE,
            Action.CAMPAIGN_WRITE,
            Action.PIPELINE_ADMIN,
            Action.CASE_WRITE,
            Action.CASE_ADMIN,
            Action.REPORT_ADMIN,
        }
    ),
}


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    user_id: str
    roles: frozenset[Role]

    def can(self, action: Action) -> bool:
        return any(action in PERMISSIONS[role] for role in self.roles)

    def require(self, action: Action) -> None:
        if not self.can(action):
            raise Forbidden(f"your role does not allow {action.value}")


def parse_groups(raw: Any) -> frozenset[Role]:
    """`cognito:groups` arrives as a list, or as "[a b]" text from the HTTP API authorizer."""
    names: Iterable[str]
    if raw is None:
        names = ()
    elif isinstance(raw, list | tuple):
        names = (str(x) for x in raw)
    else:
        names = str(raw).strip().strip("[]").replace(",", " ").split()
    known = {r.value for r in Role}
    return frozenset(Role(name) for name in names if name in known)


def principal_from_claims(claims: Mapping[str, Any] | None) -> Principal:
    """The caller, from the JWT claims the authorizer verified. The tenant comes only from here."""
    if not claims:
        raise Unauthorized("missing token claims")
    tenant_id = claims.get("custom:tenant_id")
    if not is_tenant_id(tenant_id):
        raise Unauthorized("the token carries no valid tenant")
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not user_id:
        raise Unauthorized("the token carries no subject")
    return Principal(
        tenant_id=tenant_id, user_id=user_id, roles=parse_groups(claims.get("cognito:groups"))
    )
