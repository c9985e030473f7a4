"""The example data of every event type's sample (events/samples/), in one table.

`infra.catalog` validates each example through its event's model, so a sample can never
disagree with the code; it refuses to run when an event type of
`crm_core.events.catalog.EVENT_TYPES` has no example here, or an example names no event type.

The examples tell one story in tenant `acme`: Sam (the user of events/http/) creates the
company Globex and the contact Ada, moves Ada on, merges a duplicate into her, and so on.
Everything is fixed (ids, times) so that `make schemas` writes the same files every time.
"""

from __future__ import annotations

from typing import Any

# The envelope shared by every sample: infra.catalog adds a per-type event_id.
TENANT_ID = "acme"
USER_ID = "3f5c1e9a-8d6b-4f1e-9c3a-2b7d4e6f8a10"  # the Cognito subject of events/http/
CORRELATION_ID = "JKJaXmPLvHcESHA="  # the HTTP API request id of events/http/
OCCURRED_AT = "2025-06-02T14:03:27.518Z"

_COMPANY_ID = "01JV1WBNT874YY40KHZDDE1FCQ"
_CONTACT_ID = "01JVQ94DTG246ZTHGG3GC2MF5C"
_DUPLICATE_ID = "01JWB8Y6YRCDZ96T7WF9PACYBH"

_COMPANY: dict[str, Any] = {
    "id": _COMPANY_ID,
    "name": "Globex Corporation",
    "domain": "globex.example",
    "industry": "Manufacturing",
    "employee_count": 1200,
    "phone": "+14155550100",
    "country": "US",
    "owner_id": USER_ID,
    "tags": ["enterprise"],
    "attributes": {"segment": "mid-market"},
    "contact_count": 0,
    "created_at": "2025-05-12T09:14:05.212Z",
    "updated_at": "2025-05-12T09:14:05.212Z",
    "version": 1,
}

_CONTACT: dict[str, Any] = {
    "id": _CONTACT_ID,
    "email": "ada.lovelace@globex.example",
    "other_emails": [],
    "first_name": "Ada",
    "last_name": "Lovelace",
    "phone": "+14155550123",
    "title": "Head of Engineering",
    "company_id": _COMPANY_ID,
    "owner_id": USER_ID,
    "lifecycle_stage": "lead",
    "tags": ["webinar-2025"],
    "country": "US",
    "attributes": {"newsletter": True, "seats": 25},
    "email_consent": "subscribed",
    "score": 0.0,
    "created_at": "2025-05-20T16:41:22.940Z",
    "updated_at": "2025-05-20T16:41:22.940Z",
    "version": 1,
}

_CONTACT_QUALIFIED = {
    **_CONTACT,
    "lifecycle_stage": "mql",
    "tags": ["webinar-2025", "priority"],
    "updated_at": OCCURRED_AT,
    "version": 2,
}

_CONTACT_MERGED = {
    **_CONTACT_QUALIFIED,
    "other_emails": ["ada@lovelace.example"],
    "tags": ["priority", "trade-show", "webinar-2025"],
    "version": 3,
}

# (source, detail-type) -> the event's `data`, as the producer writes it.
EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("crm.contacts", "ContactCreated"): {"contact": _CONTACT},
    ("crm.contacts", "ContactUpdated"): {
        "contact": _CONTACT_QUALIFIED,
        "changed": ["lifecycle_stage", "tags"],
        "previous": {"lifecycle_stage": "lead", "tags": ["webinar-2025"]},
    },
    ("crm.contacts", "ContactMerged"): {
        "survivor_id": _CONTACT_ID,
        "merged_id": _DUPLICATE_ID,
        "contact": _CONTACT_MERGED,
    },
    ("crm.contacts", "ContactDeleted"): {
        "contact_id": _CONTACT_ID,
        "company_id": _COMPANY_ID,
        "owner_id": USER_ID,
    },
    ("crm.contacts", "CompanyCreated"): {"company": _COMPANY},
    ("crm.contacts", "CompanyUpdated"): {
        "company": {
            **_COMPANY,
            "employee_count": 1350,
            "industry": "Industrial Automation",
            "updated_at": OCCURRED_AT,
            "version": 2,
        },
        "changed": ["industry", "employee_count"],
        "previous": {"industry": "Manufacturing", "employee_count": 1200},
    },
    ("crm.contacts", "CompanyDeleted"): {"company_id": _COMPANY_ID},
}
