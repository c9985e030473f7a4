"""Test sends: who may receive one, and how many a tenant may send.

PRODUCT.md: "A campaign's test send goes only to the tenant's own users (or addresses the
tenant verified), never to a suppressed address, within a per-tenant quota." Without these
rules the route would mail any address from the CRM's domains: an open relay.

- The recipient is the caller's own address (the ID token's `email`, when `email_verified`)
  or another user of the caller's tenant in the Cognito user pool: enabled, with a verified
  address, and `custom:tenant_id` equal to the caller's tenant. Anything else is refused,
  the same way whether or not the address is a user of another tenant.
- A suppressed address (a hard bounce, a complaint) is refused as for campaigns.
- At most TEST_SENDS_PER_HOUR per tenant and clock hour: one counter item per hour, taken
  with a conditional ADD (atomic under concurrent requests) and given back when SES refuses
  the email. A replayed Idempotency-Key never reaches here, so it counts once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from crm_core import keys
from crm_core.campaigns.suppression import suppression_key
from crm_core.errors import TooManyRequests
from crm_core.table import Table

TEST_SENDS_PER_HOUR = 30
TEST_SEND_QUOTA_ITEM = "test_send_quota"
WINDOW_SECONDS = 3600
_COGNITO_THROTTLES = {"TooManyRequestsException", "LimitExceededException"}


class TestSendQuotaExceeded(TooManyRequests):
    """The tenant's test sends of this hour are used up; `retry_after` seconds until the next."""

    __test__ = False  # not a pytest class

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"your tenant sent its {TEST_SENDS_PER_HOUR} test emails of this hour: the next "
            f"can be sent in {retry_after} s"
        )
        self.retry_after = retry_after


def own_verified_address(claims: Mapping[str, Any] | None) -> str | None:
    """The caller's address from the ID token, if Cognito verified it. The HTTP API hands
    claims over as strings ("true"); a decoded token has a boolean."""
    if not claims:
        return None
    email, verified = claims.get("email"), claims.get("email_verified")
    if not isinstance(email, str) or verified not in (True, "true"):
        return None
    return email.strip().lower()


class Teammates:
    """The users of a tenant, as the Cognito user pool knows them."""

    def __init__(self, make_client: Callable[[], Any], user_pool_id: str) -> None:
        self._make_client = make_client
        self._client: Any = None
        self.user_pool_id = user_pool_id

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def includes(self, tenant_id: str, email: str) -> bool:
        """Whether `email` (lower-cased) is the verified address of an enabled user of
        `tenant_id`: one ListUsers, filtered on the address."""
        if '"' in email or "\\" in email:
            return False  # no valid address here holds them; the filter would need escapes
        try:
            found = self.client.list_users(
                UserPoolId=self.user_pool_id, Filter=f'email = "{email}"', Limit=10
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _COGNITO_THROTTLES:
                raise TooManyRequests("the user directory is busy; try again shortly") from exc
            raise
        for user in found.get("Users") or []:
            attributes = {a["Name"]: a.get("Value") for a in user.get("Attributes") or []}
            if (
                user.get("Enabled") is True
                and attributes.get("custom:tenant_id") == tenant_id
                and attributes.get("email_verified") == "true"
                and str(attributes.get("email") or "").lower() == email
            ):
                return True
        return False


def is_suppressed(table: Table, tenant_id: str, email: str) -> bool:
    return table.get(suppression_key(tenant_id, email), consistent=False) is not None


class TestSendQuota:
    """TEST_SENDS_PER_HOUR test emails per tenant and clock hour."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        table: Table,
        per_hour: int = TEST_SENDS_PER_HOUR,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.per_hour = per_hour
        self.clock = clock

    def take(self, tenant_id: str) -> str:
        """Count one test email in the current hour, and name that hour; raises
        TestSendQuotaExceeded (with the seconds left in the hour) when it is full."""
        now = self.clock()
        start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        window = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H")
        count = self.table.op.update(
            keys.quota_of_test_sends(tenant_id, window),
            "ADD #sent :one SET #type = :type, #ttl = :ttl",
            "attribute_not_exists(#sent) OR #sent < :limit",
            {"#sent": "sent", "#type": "type", "#ttl": "ttl"},
            one=1,
            type=TEST_SEND_QUOTA_ITEM,
            ttl=start + 2 * WINDOW_SECONDS,  # DynamoDB deletes it some time after its hour
            limit=self.per_hour,
        )
        try:
            self.table.update(count)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise TestSendQuotaExceeded(max(1, math.ceil(start + WINDOW_SECONDS - now))) from None
        return window

    def give_back(self, tenant_id: str, window: str) -> None:
        """Uncount a test email SES did not take."""
        self.table.update(
            self.table.op.update(
                keys.quota_of_test_sends(tenant_id, window),
                "ADD #sent :minus",
                names={"#sent": "sent"},
                minus=-1,
            )
        )
