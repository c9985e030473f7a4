"""The example data of every event type's sample (events/samples/), in one table.

`infra.build.catalog` validates each example through its event's model, so a sample can never
disagree with the code; it refuses to run when an event type of
`crm_core.events.catalog.EVENT_TYPES` has no example here, or an example names no event type.

The examples tell one story in tenant `acme`: Sam (the user of events/http/) creates the
company Globex and the contact Ada, moves Ada on, merges a duplicate into her, and so on.
Everything is fixed (ids, times) so that `make schemas` writes the same files every time.
"""

from __future__ import annotations

from typing import Any

# The envelope shared by every sample: infra.build.catalog adds a per-type event_id.
TENANT_ID = "acme"
USER_ID = "3f5c1e9a-8d6b-4f1e-9c3a-2b7d4e6f8a10"  # the Cognito subject of events/http/
CORRELATION_ID = "JKJaXmPLvHcESHA="  # the HTTP API request id of events/http/
OCCURRED_AT = "2025-06-02T14:03:27.518Z"

_COMPANY_ID = "01JV1WBNT874YY40KHZDDE1FCQ"
_CONTACT_ID = "01JVQ94DTG246ZTHGG3GC2MF5C"
_DUPLICATE_ID = "01JWB8Y6YRCDZ96T7WF9PACYBH"
_CAMPAIGN_ID = "01JX2CAMPA1GN5J9K1M3P5R7T9"
_DISPATCH_ID = "01JX3D1SPATCH5J9K1M3P5R7T9"


def _campaign(state: str, version: int, **more: Any) -> dict[str, Any]:
    """A campaign event's data: the June newsletter to the engaged MQLs segment."""
    return {
        "campaign_id": _CAMPAIGN_ID,
        "name": "June newsletter",
        "segment_id": "01JWTHE1B3D5F7H9K1M3P5R7T9",
        "state": state,
        "version": version,
        "dispatch_id": None if state == "draft" else _DISPATCH_ID,
        **more,
    }


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

# Ada came in through the website's demo form, from a paid search ad.
_TOUCH = {
    "source_id": "01JVQ93Z1T8M4K6P2R0W5X7Y9B",
    "source_name": "Website demo form",
    "lead_id": "01JVQ94DSX3B7N9Q1T5V8W2Z4C",
    "at": "2025-05-20T16:41:22.611Z",
    "utm_source": "google",
    "utm_medium": "cpc",
    "utm_campaign": "spring-demo",
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
    "last_activity_at": None,
    "activity_counts": {},
    "attribution": {
        "first_touch": _TOUCH,
        "last_touch": _TOUCH,
    },
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
    "last_activity_at": "2025-06-02T13:40:00.000Z",
    "activity_counts": {"call": 1},
    "other_emails": ["ada@lovelace.example"],
    "tags": ["priority", "trade-show", "webinar-2025"],
    "version": 3,
}

# Sam logs a call with Ada about their deal (the call's id: a ULID of its time), then a
# follow-up task.
_CALL_ID = "01JWRDXNW0QG7B5X3K2Y8ZP4MA"
_TASK_ID = "01JWTG9PM0H3V6C8N1R5T2W7QE"
_DEAL_ID = "01JX9DEA1B3D5F7H9K1M3P5R7T"
_NO_FACTS = {
    "deal_id": None,
    "direction": None,
    "outcome": None,
    "duration_s": None,
    "status": None,
    "priority": None,
    "due_at": None,
    "assignee_id": None,
    "completed_at": None,
    "campaign_id": None,
    "url": None,
    "bounce_type": None,
    "method": None,
    "lead_id": None,
    "source_id": None,
    "case_id": None,
}
_CALL_FACTS = {
    **_NO_FACTS,
    "id": _CALL_ID,
    "contact_id": _CONTACT_ID,
    "deal_id": _DEAL_ID,
    "type": "call",
    "occurred_at": "2025-06-02T13:40:00.000Z",
    "created_by": USER_ID,
    "direction": "outbound",
    "outcome": "connected",
    "duration_s": 754,
}
_TASK_FACTS = {
    **_NO_FACTS,
    "id": _TASK_ID,
    "contact_id": _CONTACT_ID,
    "type": "task",
    "occurred_at": "2025-06-03T09:00:00.000Z",
    "created_by": USER_ID,
    "status": "open",
    "priority": "high",
    "due_at": "2025-06-05T17:00:00.000Z",
    "assignee_id": USER_ID,
}


# Sam's deal with Globex: Ada is the buyer; it moves to proposal, then is won.


def _deal(stage_id: str, status: str, version: int, **more: Any) -> dict[str, Any]:
    closed = status != "open"
    return {
        "id": _DEAL_ID,
        "name": "Globex: 40 seats",
        "pipeline_id": "default",
        "stage_id": stage_id,
        "status": status,
        "amount": "48000.00",
        "currency": "EUR",
        "close_date": "2025-06-30",
        "owner_id": USER_ID,
        "company_id": _COMPANY_ID,
        "contacts": [{"contact_id": _CONTACT_ID, "role": "buyer", "primary": True}],
        "attributes": {"seats": 40},
        "lost_reason": None,
        "next_step": "Send the order form",
        "closing": {"base": "USD", "rate": "1.08", "amount": "51840.00"} if closed else None,
        "stage_entered_at": OCCURRED_AT,
        "closed_at": OCCURRED_AT if closed else None,
        "close_date_pushes": 0,
        "time_in_stages": {"qualification": 86400} if version > 1 else {},
        "created_at": "2025-05-30T10:02:11.004Z",
        "updated_at": OCCURRED_AT,
        "created_by": USER_ID,
        "version": version,
        **more,
    }



# Ada writes to support: her urgent case is assigned to Kim, answered, solved and rated.
_CASE_ID = "01JXC4SE0A2B4D6F8H0K2M4P6R"
_QUEUE_ID = "01JXC4Q0E0A2B4D6F8H0K2M4P6"
_AGENT_ID = "kim@acme.example"


def _target(minutes: int, due: str, met: str | None = None, **more: Any) -> dict[str, Any]:
    return {
        "target_minutes": minutes,
        "due_at": None if met else due,
        "met_at": met,
        "breached": False,
        "paused": False,
        **more,
    }


def _case(status: str, version: int, **more: Any) -> dict[str, Any]:
    return {
        "id": _CASE_ID,
        "subject": "Invoices show the wrong VAT number",
        "description": "Since Monday every invoice shows our old VAT number.",
        "contact_id": _CONTACT_ID,
        "company_id": _COMPANY_ID,
        "priority": "urgent",
        "type": "incident",
        "channel": "email",
        "queue_id": _QUEUE_ID,
        "assignee_id": _AGENT_ID,
        "status": status,
        "tags": ["billing"],
        "attributes": {},
        "sla": {
            "first_response": _target(60, "2025-06-02T14:40:00.000Z"),
            "next_response": None,
            "resolution": _target(480, "2025-06-03T13:40:00.000Z"),
        },
        "sla_state": None,
        "satisfaction": None,
        "follow_up_of": None,
        "first_responded_at": None,
        "solved_at": None,
        "closed_at": None,
        "reopened": 0,
        "created_at": OCCURRED_AT,
        "updated_at": OCCURRED_AT,
        "created_by": USER_ID,
        "version": version,
        **more,
    }


_ANSWERED = {
    "first_response": _target(60, "", "2025-06-02T14:05:00.000Z"),
    "next_response": None,
    "resolution": _target(480, "2025-06-03T13:40:00.000Z"),
}
_REPLY = {
    "id": "01JXC4R1P0A2B4D6F8H0K2M4P6",
    "kind": "reply",
    "public": True,
    "excerpt": "Thank you, Ada: the VAT number is fixed from today's invoices on.",
    "author_id": _AGENT_ID,
    "from_address": None,
    "message_id": "<01jxc4r1p0a2b4d6f8h0k2m4p6.01jxc4se0a2b4d6f8h0k2m4p6@support.example>",
    "attachments": 0,
    "created_at": "2025-06-02T14:05:00.000Z",
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
    ("crm.contacts", "ContactUnsubscribed"): {
        "contact_id": _CONTACT_ID,
        "email": "ada.lovelace@globex.example",
        "campaign_id": _CAMPAIGN_ID,
        "method": "one_click",
        "previous_consent": "subscribed",
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
    ("crm.activities", "ActivityLogged"): {"activity": _CALL_FACTS},
    ("crm.activities", "ActivityUpdated"): {
        "activity": {**_TASK_FACTS, "status": "completed", "completed_at": OCCURRED_AT},
        "changed": ["completed_at", "status"],
    },
    ("crm.activities", "ActivityDeleted"): {"activity": _CALL_FACTS},
    ("crm.activities", "TaskOverdue"): {"task": _TASK_FACTS},
    ("crm.leads", "LeadReceived"): {
        "lead_id": "01JWTHC2R7K3V5X9Z1B6C8E0FA",
        "source_id": "01JVQ93Z1T8M4K6P2R0W5X7Y9B",
        "received_at": OCCURRED_AT,
        "content_type": "application/json",
        "external_id": "typeform-8f2c1d",
    },
    ("crm.scoring", "ScoringModelChanged"): {
        "version": 3,
        "previous_version": 2,
        "half_life_days": 21.0,
        "mql_threshold": 40,
        "sql_threshold": 90,
        "behaviour_rules": 9,
        "fit_rules": 4,
    },
    ("crm.scoring", "LeadScoreChanged"): {
        "contact_id": "01JWTHC9M2Q4S6U8W0Y2A4C6E8",
        "old_score": 36.4,
        "new_score": 46.4,
        "fit": 7,
        "engagement": 39.4,
        "model_version": 3,
        "reasons": [{"rule_id": "pricing-clicked", "points": 10}],
        "cause": {
            "detail_type": "ActivityLogged",
            "event_id": "01JWTHCB5N7Q9S1U3W5Y7A9C1E",
            "activity_id": "01JWTHCA4M6P8R0T2V4X6Z8B0D",
            "activity_type": "email_clicked",
        },
    },
    ("crm.scoring", "LeadQualified"): {
        "contact_id": "01JWTHC9M2Q4S6U8W0Y2A4C6E8",
        "threshold": "mql",
        "threshold_score": 40,
        "score": 46.4,
        "model_version": 3,
        "lifecycle_stage_before": "lead",
        "lifecycle_stage_after": "mql",
    },
    ("crm.scoring", "ScoringJobProgressed"): {
        "job_id": "01JWTHD0A2C4E6G8J0K2M4P6R8",
        "model_version": 3,
        "status": "running",
        "contacts_seen": 1250,
        "contacts_rescored": 1174,
    },
    ("crm.campaigns", "SegmentCreated"): {
        "segment_id": "01JWTHE1B3D5F7H9K1M3P5R7T9",
        "name": "Engaged MQLs in France",
        "filter": {"lifecycle_stage": ["mql"], "min_score": 50, "country": ["FR"]},
        "version": 1,
    },
    ("crm.campaigns", "SegmentUpdated"): {
        "segment_id": "01JWTHE1B3D5F7H9K1M3P5R7T9",
        "name": "Engaged MQLs in France and Belgium",
        "filter": {"lifecycle_stage": ["mql"], "min_score": 50, "country": ["FR", "BE"]},
        "version": 2,
    },
    ("crm.campaigns", "SegmentDeleted"): {"segment_id": "01JWTHE1B3D5F7H9K1M3P5R7T9"},
    ("crm.campaigns", "CampaignCreated"): _campaign("draft", 1),
    ("crm.campaigns", "CampaignUpdated"): _campaign("draft", 2),
    ("crm.campaigns", "CampaignScheduled"): _campaign(
        "scheduled", 3, send_at="2025-06-10T07:00:00.000Z", timezone="Europe/Paris"
    ),
    ("crm.campaigns", "CampaignSendRequested"): _campaign("sending", 3),
    ("crm.campaigns", "CampaignSendingStarted"): _campaign(
        "sending", 4, send_at="2025-06-10T07:00:00.000Z", timezone="Europe/Paris"
    ),
    ("crm.campaigns", "CampaignPaused"): _campaign(
        "paused",
        5,
        reason="complaint rate 0.4% (5 of 1,250 delivered) is above 0.3%",
        stats={"audience": 2400, "sent": 1300, "delivered": 1250, "complained": 5},
    ),
    ("crm.campaigns", "CampaignResumed"): _campaign("sending", 6),
    ("crm.campaigns", "CampaignCancelled"): _campaign("cancelled", 7, reason="cancelled"),
    ("crm.campaigns", "CampaignSent"): _campaign(
        "sent",
        5,
        stats={"audience": 2400, "sent": 2310, "skipped": 90, "delivered": 2290, "opened": 804},
    ),
    ("crm.campaigns", "CampaignFailed"): _campaign(
        "failed", 5, reason="the segment had no contacts when the send started"
    ),
    ("crm.deals", "DealCreated"): {"deal": _deal("qualification", "open", 1)},
    ("crm.deals", "DealUpdated"): {
        "deal": _deal("qualification", "open", 2, next_step="Call the CFO"),
        "changed": ["next_step"],
        "previous": {"next_step": "Send the order form"},
    },
    ("crm.deals", "DealStageChanged"): {
        "deal": _deal("proposal", "open", 3),
        "changed": ["stage_id"],
        "previous": {"stage_id": "qualification"},
    },
    ("crm.deals", "DealWon"): {"deal": _deal("won", "won", 4)},
    ("crm.deals", "DealLost"): {
        "deal": _deal(
            "lost", "lost", 4, lost_reason={"reason": "competitor", "note": "Chose Initech"}
        )
    },
    ("crm.deals", "DealDeleted"): {
        "deal_id": _DEAL_ID,
        "pipeline_id": "default",
        "stage_id": "qualification",
        "status": "open",
        "contact_ids": [_CONTACT_ID],
        "company_id": _COMPANY_ID,
        "owner_id": USER_ID,
    },
    ("crm.deals", "DealRotting"): {
        "deal": _deal("proposal", "open", 3),
        "since": "2025-05-19T10:02:11.004Z",
        "rotting_days": 14,
    },
    ("crm.cases", "CaseOpened"): {"case": _case("new", 1)},
    ("crm.cases", "CaseUpdated"): {
        "case": _case("new", 2, tags=["billing", "vat"]),
        "changed": ["tags"],
        "previous": {"tags": ["billing"]},
    },
    ("crm.cases", "CaseAssigned"): {
        "case": _case("new", 1),
        "previous_assignee_id": None,
        "by_policy": "round_robin",
    },
    ("crm.cases", "CaseReplied"): {
        "case": _case("open", 3, sla=_ANSWERED, first_responded_at=_REPLY["created_at"]),
        "entry": _REPLY,
    },
    ("crm.cases", "CaseStatusChanged"): {
        "case": _case("open", 3, sla=_ANSWERED, first_responded_at=_REPLY["created_at"]),
        "previous_status": "new",
    },
    ("crm.cases", "CaseSlaWarning"): {
        "case": _case("new", 2, sla_state="at_risk"),
        "target": "first_response",
        "due_at": "2025-06-02T14:40:00.000Z",
    },
    ("crm.cases", "CaseSlaBreached"): {
        "case": _case("new", 3, sla_state="breached"),
        "target": "first_response",
        "due_at": "2025-06-02T14:40:00.000Z",
    },
    ("crm.cases", "CaseSolved"): {
        "case": _case(
            "solved",
            4,
            sla=_ANSWERED,
            first_responded_at=_REPLY["created_at"],
            solved_at="2025-06-02T16:00:00.000Z",
        )
    },
    ("crm.cases", "CaseReopened"): {
        "case": _case("open", 5, sla=_ANSWERED, reopened=1),
        "by": "customer",
    },
    ("crm.cases", "CaseRated"): {
        "case_id": _CASE_ID,
        "contact_id": _CONTACT_ID,
        "assignee_id": _AGENT_ID,
        "score": 5,
        "comment": "Fixed within the hour, thank you!",
        "rated_at": "2025-06-03T08:12:45.000Z",
    },
}
