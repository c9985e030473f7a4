"""Tenants, users and tokens in a Cognito user pool: the local one, or a deployed stage's.

A tenant is not an object of its own: it is the immutable `custom:tenant_id` attribute of
its users. `create_tenant` adds one user per role, as the demo tenant has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ROLES = ("admin", "sales", "marketing", "support", "viewer")
# Meets the template's password policy (12+ characters, all four character classes).
LOCAL_PASSWORD = "Local-Passw0rd!"
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class IdentityError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    email: str
    tenant_id: str
    roles: tuple[str, ...]
    password: str


def role_email(tenant_id: str, role: str) -> str:
    """The address of a tenant's standard user for a role (example.com never delivers)."""
    return f"{role}@{tenant_id.lower()}.example.com"


def check_tenant(tenant_id: str) -> str:
    if not _TENANT_RE.match(tenant_id):
        raise IdentityError(
            "a tenant id is 1 to 64 letters, digits, - or _, starting with a letter or digit"
        )
    return tenant_id


class Identity:
    """Admin operations on one user pool and its app client."""

    def __init__(self, cognito: Any, user_pool_id: str, client_id: str) -> None:
        self.cognito = cognito
        self.user_pool_id = user_pool_id
        self.client_id = client_id

    def add_user(
        self, email: str, tenant_id: str, roles: tuple[str, ...], password: str = LOCAL_PASSWORD
    ) -> User:
        """A confirmed user of a tenant with a permanent password, in the roles' groups."""
        check_tenant(tenant_id)
        unknown = set(roles) - set(ROLES)
        if unknown or not roles:
            raise IdentityError(f"roles must be among {', '.join(ROLES)}")
        self.cognito.admin_create_user(
            UserPoolId=self.user_pool_id,
            Username=email,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "custom:tenant_id", "Value": tenant_id},
            ],
            MessageAction="SUPPRESS",
        )
        self.cognito.admin_set_user_password(
            UserPoolId=self.user_pool_id, Username=email, Password=password, Permanent=True
        )
        for role in roles:
            self.cognito.admin_add_user_to_group(
                UserPoolId=self.user_pool_id, Username=email, GroupName=role
            )
        return User(email=email, tenant_id=tenant_id, roles=tuple(roles), password=password)

    def create_tenant(self, tenant_id: str, password: str = LOCAL_PASSWORD) -> list[User]:
        check_tenant(tenant_id)
        return [
            self.add_user(role_email(tenant_id, role), tenant_id, (role,), password)
            for role in ROLES
        ]

    def user_id(self, email: str) -> str | None:
        """A user's id (the `sub` of its tokens, what deals and contacts name as owner);
        None when there is no such user."""
        try:
            user = self.cognito.admin_get_user(UserPoolId=self.user_pool_id, Username=email)
        except self.cognito.exceptions.UserNotFoundException:
            return None
        attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
        sub = attributes.get("sub")
        return str(sub) if sub else None

    def id_token(self, email: str, password: str = LOCAL_PASSWORD) -> str:
        """A real ID token through InitiateAuth (USER_PASSWORD_AUTH), as a client gets one."""
        result = self.cognito.initiate_auth(
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
        token: str = result["AuthenticationResult"]["IdToken"]
        return token
