"""Each tenant's sender namespace on the stage's shared sending domain.

Every tenant sends from the one domain of the stage (template parameter `SenderDomain`), so
without a rule any tenant could send as any other. On that domain a tenant may use only the
local parts `<namespace>.<anything>`, its namespace being its tenant id lower-cased (tenant
ids hold no dot, so the part before the first dot names the tenant). Addresses are
lower-cased and tenant ids are not, so "Acme" and "acme" would share a namespace: the first
tenant to use one claims it in the table, and the other is refused.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from crm_core import keys
from crm_core.table import Table

NAMESPACE_CLAIM_ITEM = "sender_namespace"


def namespace(tenant_id: str) -> str:
    return tenant_id.lower()


def on_shared_domain(domain: str, shared_domain: str) -> bool:
    """The shared domain or one of its subdomains (which the shared identity verifies too)."""
    return domain == shared_domain or domain.endswith(f".{shared_domain}")


def in_namespace(address: str, tenant_id: str, shared_domain: str) -> bool:
    """`<namespace>.<something>@<shared domain>` exactly: no subdomain of the shared domain,
    whose addresses no namespace covers."""
    local, _, domain = address.strip().lower().rpartition("@")
    prefix = f"{namespace(tenant_id)}."
    return domain == shared_domain and local.startswith(prefix) and len(local) > len(prefix)


def pattern(tenant_id: str, shared_domain: str) -> str:
    """The tenant's addresses on the shared domain, as the errors show them."""
    return f"{namespace(tenant_id)}.<name>@{shared_domain}"


class NamespaceClaims:
    """Which tenant owns each namespace: claimed once, never moved. Answers are kept for the
    life of the process (a claim never changes hands)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._owners: dict[str, str] = {}

    def owns(self, tenant_id: str) -> bool:
        """Whether `tenant_id` owns its namespace, claiming it when nobody has yet.

        One conditional UpdateItem: written when unclaimed or already ours (the same values
        again), refused when another tenant holds it."""
        name = namespace(tenant_id)
        owner = self._owners.get(name)
        if owner is None:
            owner = self._claim(name, tenant_id)
            if owner:
                self._owners[name] = owner
        return owner == tenant_id

    def forget(self) -> None:
        self._owners.clear()

    def _claim(self, name: str, tenant_id: str) -> str:
        key = keys.sender_namespace(name)
        claim = self.table.op.update(
            key,
            "SET #type = :type, #ns = :ns, tenant_id = :t",
            "attribute_not_exists(PK) OR tenant_id = :t",
            {"#type": "type", "#ns": "namespace"},
            type=NAMESPACE_CLAIM_ITEM,
            ns=name,
            t=tenant_id,
        )
        try:
            self.table.update(claim)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            held = self.table.get(key)
            return str(held["tenant_id"]) if held else ""
        return tenant_id
