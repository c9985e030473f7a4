"""Which from addresses a tenant may send from (saving, changing, scheduling, sending and
test-sending a campaign all ask).

- On the stage's shared sending domain: only the tenant's namespace,
  `<tenant id lower-cased>.<name>@<domain>` (sender_namespace.py), claimed by the tenant;
  the domain must be verified in SES.
- Anywhere else: the most specific verified SES identity covering the address (the address,
  its domain, a parent domain) must be tagged `crm:tenant_id=<this tenant>` by ops
  (docs/operations.md). An untagged identity, or another tenant's, is refused: verified
  alone only says that the account may send from it, not which tenant.

The display name is free text (from_name): it never decides whose address this is.
"""

from __future__ import annotations

from crm_core.campaigns.sender_identity import TENANT_TAG, SenderIdentities, candidates
from crm_core.campaigns.sender_namespace import (
    NamespaceClaims,
    in_namespace,
    on_shared_domain,
    pattern,
)


class SenderRules:
    def __init__(
        self, identities: SenderIdentities, claims: NamespaceClaims, shared_domain: str
    ) -> None:
        self.identities = identities
        self.claims = claims
        self.shared_domain = shared_domain.strip().lower()

    def refusal(self, tenant_id: str, address: str) -> str | None:
        """Why `tenant_id` may not send from `address`, saying what it may use (None: it may)."""
        domain = address.strip().lower().rpartition("@")[2]
        ours = pattern(tenant_id, self.shared_domain)
        tag = f"{TENANT_TAG}={tenant_id}"
        own = f"a domain or address of your own, verified in SES and tagged {tag}"
        if on_shared_domain(domain, self.shared_domain):
            if not in_namespace(address, tenant_id, self.shared_domain):
                return (
                    f"{address} is not one of your tenant's addresses: on {self.shared_domain} "
                    f"send from {ours}, or from {own}"
                )
            if not any(self.identities.identity(name) for name in candidates(address)[1:]):
                return (
                    f"the sending domain {self.shared_domain} is not verified in SES yet: "
                    "ask your operators to verify it"
                )
            if not self.claims.owns(tenant_id):
                return (
                    f"the addresses {ours} belong to another tenant (tenant ids that differ "
                    f"only in case share them): send from {own}"
                )
            return None
        found = self.identities.sending_identity(address)
        if found is None:
            return (
                f"{address} is not on an SES identity verified for sending: verify {domain} "
                f"(or the address) in SES and have it tagged {tag}, or "
                f"send from {ours}"
            )
        if found.tenant_id != tenant_id:
            return (
                f"{address} is on the SES identity {found.name}, which is not tagged for your "
                f"tenant ({tag}): send from {ours}, or from {own}"
            )
        return None

    def forget(self) -> None:
        """Drop the answers kept about SES identities and namespace claims."""
        self.identities.forget()
        self.claims.forget()
