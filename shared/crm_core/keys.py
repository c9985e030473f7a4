"""Every key of the single table, built in one place.

Every partition key starts with ``T#<tenant>#`` so that no key condition can reach another
tenant's items. docs/data-model.md lists the access pattern each key serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROFILE = "PROFILE"
UNIQUE = "UNIQUE"

# Index names and their key attributes, as declared in template.yaml.
INDEX_KEYS: dict[str | None, tuple[str, str]] = {
    None: ("PK", "SK"),
    "GSI1": ("GSI1PK", "GSI1SK"),
    "GSI2": ("GSI2PK", "GSI2SK"),
    "GSI3": ("GSI3PK", "GSI3SK"),
    "GSI4": ("GSI4PK", "GSI4SK"),
}


_KEY_ATTRIBUTES = frozenset(name for pair in INDEX_KEYS.values() for name in pair)


def without_keys(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item's own attributes: without its table key and its index keys."""
    return {k: v for k, v in item.items() if k not in _KEY_ATTRIBUTES}


def tenant(tenant_id: str) -> str:
    return f"T#{tenant_id}"


def tenant_prefix(tenant_id: str) -> str:
    """What every partition key of the tenant starts with (tenant ids hold no `#`)."""
    return f"{tenant(tenant_id)}#"


def _in(tenant_id: str, rest: str) -> str:
    return tenant_prefix(tenant_id) + rest


def _kind(partition: str) -> str:
    """A partition key's kind: the part after the tenant (`C`, `EMAIL`, `SUPPRESS`...)."""
    parts = partition.split("#", 3)
    return parts[2] if len(parts) > 2 and parts[0] == "T" else ""


def is_email_claim(partition: str) -> bool:
    """The item that owns an email address within a tenant (`contact_email`)."""
    return _kind(partition) == "EMAIL"


def is_suppression(partition: str) -> bool:
    return _kind(partition) == "SUPPRESS"


def is_domain_claim(partition: str) -> bool:
    """The item that owns a company's domain within a tenant (`company_domain`)."""
    return _kind(partition) == "DOMAIN"


def is_company(partition: str) -> bool:
    """A company's item or one of its partitions (`company`, `contacts_by_company`)."""
    return _kind(partition) == "CO"


# Contacts -------------------------------------------------------------------------------
# The `type` of a contact's item, and of what a merged contact's item becomes.
CONTACT_ITEM = "contact"
REDIRECT_ITEM = "contact_redirect"
# The activities function keeps a contact's summary on its item: `last_activity_at`, and a
# count per activity type in `activity_count_<type>` (top-level numbers, so a transaction
# can ADD to them).
ACTIVITY_COUNT_PREFIX = "activity_count_"


def contact(tenant_id: str, contact_id: str) -> dict[str, str]:
    return {"PK": _in(tenant_id, f"C#{contact_id}"), "SK": PROFILE}


def contact_email(tenant_id: str, normalized_email: str) -> dict[str, str]:
    """The uniqueness item that owns an email address within a tenant."""
    return {"PK": _in(tenant_id, f"EMAIL#{normalized_email}"), "SK": UNIQUE}


# The sort keys of a tag's members: the contact's id after it.
MEMBER_PREFIX = "C#"


def tag_member(tenant_id: str, tag: str, contact_id: str) -> dict[str, str]:
    return {"PK": tag_partition(tenant_id, tag), "SK": f"{MEMBER_PREFIX}{contact_id}"}


def tag_partition(tenant_id: str, tag: str) -> str:
    return _in(tenant_id, f"TAG#{tag}")


def contacts_by_updated(tenant_id: str) -> str:
    """GSI1 partition: all contacts of a tenant, newest update first."""
    return _in(tenant_id, "CONTACTS")


def contacts_by_stage(tenant_id: str, stage: str, rank: str = "0.0:0") -> str:
    """GSI2 partition: contacts of one lifecycle stage in one scoring rank (`<half-life>:<fit>`,
    see `crm_core.scores.state`), ordered by engagement. A stage's contacts are the union
    of its ranks; the ranks a tenant has are kept in `scoring_ranks`."""
    return _in(tenant_id, f"STAGE#{stage}#R#{rank}")


def contacts_by_owner(tenant_id: str, owner_id: str) -> str:
    """GSI3 partition: contacts of one owner, newest update first."""
    return _in(tenant_id, f"OWNER#{owner_id}")


def contacts_by_company(tenant_id: str, company_id: str) -> str:
    """GSI4 partition: contacts of one company, newest update first."""
    return _in(tenant_id, f"CO#{company_id}#CONTACTS")


def time_sort_key(iso_time: str, item_id: str) -> str:
    return f"{iso_time}#{item_id}"


# Companies ------------------------------------------------------------------------------
def company(tenant_id: str, company_id: str) -> dict[str, str]:
    return {"PK": _in(tenant_id, f"CO#{company_id}"), "SK": PROFILE}


def company_domain(tenant_id: str, domain: str) -> dict[str, str]:
    return {"PK": _in(tenant_id, f"DOMAIN#{domain}"), "SK": UNIQUE}


def companies_by_name(tenant_id: str) -> str:
    """GSI1 partition: companies of a tenant ordered by lower-cased name."""
    return _in(tenant_id, "COMPANIES")


# The name ends with a character below every character of its sortable form, so "Acme"
# sorts before "Acme Corp" (a "#" there sorted it after: " " < "#").
_NAME_END = "\x1f"
_NAME_SORT_CHARS = 200


def company_name_sort_key(name: str, company_id: str) -> str:
    return f"{company_name_prefix(name)}{_NAME_END}{company_id}"


def company_name_prefix(text: str) -> str:
    """The sortable form of a name, or of the start of one: case-folded, control characters
    as spaces, and at most 200 characters (4 bytes each at most) so that with the id the key
    stays within DynamoDB's 1024 bytes even when case folding lengthens the name."""
    folded = "".join(c if c >= " " else " " for c in text.casefold())
    return folded[:_NAME_SORT_CHARS]


# Activities -----------------------------------------------------------------------------
# An activity's id is a ULID whose time is the activity's `occurred_at`, so its key in the
# contact's partition, `ACT#<id>`, sorts the timeline by time, a time range is a key range,
# and the id alone finds the item (docs/decisions.md, "Activity ids carry their time").
ACTIVITY_PREFIX = "ACT#"
# Open tasks not yet reported overdue, across tenants, spread over a few partitions of GSI4
# so that no single partition takes every tenant's task writes (decision "Overdue tasks").
TASK_DUE_SHARDS = 4
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def activity(tenant_id: str, contact_id: str, activity_id: str) -> dict[str, str]:
    return {"PK": contact(tenant_id, contact_id)["PK"], "SK": f"{ACTIVITY_PREFIX}{activity_id}"}


def activities_of_type(tenant_id: str, contact_id: str, activity_type: str) -> str:
    """GSI1 partition: one contact's activities of one type, by time (GSI1SK is the id)."""
    return _in(tenant_id, f"C#{contact_id}#ACT#{activity_type}")


def tasks_of_assignee(tenant_id: str, assignee_id: str, status: str) -> str:
    """GSI2 partition: one assignee's tasks in one status, by due time."""
    return _in(tenant_id, f"TASKS#A#{assignee_id}#{status}")


def tasks_of_tenant(tenant_id: str, status: str) -> str:
    """GSI3 partition: all of a tenant's tasks in one status, by due time."""
    return _in(tenant_id, f"TASKS#{status}")


def task_due_watch(task_id: str) -> str:
    """GSI4 partition: the shard of open tasks awaiting their overdue check, by due time.

    The one partition key that is not a tenant's: only the scheduled overdue job reads it,
    and each item it finds is a tenant's own task item, acted on within that tenant.
    """
    return task_due_shard(_CROCKFORD.index(task_id[-1]) % TASK_DUE_SHARDS)


def task_due_shard(shard: int) -> str:
    return f"SYS#TASKS_DUE#{shard}"


def due_sort_key(due_at: str, task_id: str) -> str:
    return f"{due_at}#{task_id}"


# Lead intake -----------------------------------------------------------------------------
# A webhook names only its source (no token, so no tenant): the source's route item, in the
# one partition per source that does not start with a tenant, names its tenant and holds its
# encrypted secrets, so a delivery is verified with one GetItem (decision "Lead sources").
LEAD_SOURCE_ROUTE = "ROUTE"
LEAD_ITEM = "LEAD"


def lead_source(tenant_id: str, source_id: str) -> dict[str, str]:
    return {"PK": _in(tenant_id, f"LS#{source_id}"), "SK": PROFILE}


def lead_sources_of_tenant(tenant_id: str) -> str:
    """GSI1 partition: a tenant's lead sources, oldest first (GSI1SK is the id)."""
    return _in(tenant_id, "LEAD_SOURCES")


def lead_source_route(source_id: str) -> dict[str, str]:
    """The webhook's view of a source: its tenant, status and encrypted secrets."""
    return {"PK": f"SYS#LEAD_SOURCE#{source_id}", "SK": LEAD_SOURCE_ROUTE}


def lead(tenant_id: str, lead_id: str) -> dict[str, str]:
    """A delivery: the raw payload as received, and what became of it."""
    return {"PK": _in(tenant_id, f"LEAD#{lead_id}"), "SK": LEAD_ITEM}


def deliveries_of_source(tenant_id: str, source_id: str) -> str:
    """GSI1 partition: a source's deliveries, newest first (GSI1SK is the lead id)."""
    return _in(tenant_id, f"LS#{source_id}#DELIVERIES")


def deliveries_in_status(tenant_id: str, source_id: str, status: str) -> str:
    """GSI2 partition: a source's deliveries in one status, newest first."""
    return _in(tenant_id, f"LS#{source_id}#DELIVERIES#{status}")


def lead_delivery_claim(tenant_id: str, source_id: str, digest: str) -> dict[str, str]:
    """Claims one signed delivery (the SHA-256 of its timestamp and body): a re-sent or
    replayed delivery finds the claim and gets the first one's lead id."""
    return {"PK": _in(tenant_id, f"LS#{source_id}#DELIVERY#{digest}"), "SK": UNIQUE}


def lead_external_claim(tenant_id: str, source_id: str, external_digest: str) -> dict[str, str]:
    """Claims a sender's `external_id` within a source (its SHA-256, so any text fits)."""
    return {"PK": _in(tenant_id, f"LS#{source_id}#EXT#{external_digest}"), "SK": UNIQUE}


# Scoring --------------------------------------------------------------------------------
def scoring_model(tenant_id: str) -> dict[str, str]:
    """The tenant's current scoring model (absent: the default model, version 0)."""
    return {"PK": _in(tenant_id, "SCORING"), "SK": "MODEL"}


def scoring_model_version(tenant_id: str, version: int) -> dict[str, str]:
    """One version of the model, kept unchanged: a score names the version behind it."""
    return {"PK": _in(tenant_id, "SCORING"), "SK": f"MODEL#{version:010d}"}


def scoring_ranks(tenant_id: str) -> dict[str, str]:
    """The scoring ranks (half-life and fit) any contact of the tenant was ever put in: the
    GSI2 partitions a stage's list merges. Added to before a contact moves into a new one."""
    return {"PK": _in(tenant_id, "SCORING"), "SK": "RANKS"}


def score_change(tenant_id: str, contact_id: str, event_id: str) -> dict[str, str]:
    """One change of a contact's score, in the contact's partition, keyed by the event that
    caused it (written once: a second delivery of the event finds it)."""
    return {"PK": contact(tenant_id, contact_id)["PK"], "SK": f"{SCORE_CHANGE_PREFIX}{event_id}"}


SCORE_CHANGE_PREFIX = "SCORE#"


def scoring_job(tenant_id: str, job_id: str) -> dict[str, str]:
    """A re-score job: its progress and the cursor it resumes from."""
    return {"PK": _in(tenant_id, "SCORING"), "SK": f"JOB#{job_id}"}


def scoring_job_of_version(tenant_id: str, version: int) -> dict[str, str]:
    """The claim that makes one job per model version, however often its event arrives."""
    return {"PK": _in(tenant_id, "SCORING"), "SK": f"JOBV#{version:010d}"}


def scoring_job_slot(tenant_id: str, scope: str) -> dict[str, str]:
    """Names the one job of a scope (`stale`, `all`) that may run: a job is started only by
    taking this slot from no job, or from one that ended, stalled or runs an older model."""
    return {"PK": _in(tenant_id, "SCORING"), "SK": f"JOBSLOT#{scope}"}


# Segments and campaigns ---------------------------------------------------------------
def segment(tenant_id: str, segment_id: str) -> dict[str, str]:
    """A segment, in its tenant's one partition of segments (a list is one Query)."""
    return {"PK": segments_of_tenant(tenant_id), "SK": f"{SEGMENT_PREFIX}{segment_id}"}


def segments_of_tenant(tenant_id: str) -> str:
    return _in(tenant_id, "SEGMENTS")


SEGMENT_PREFIX = "SEG#"


def campaign_partition(tenant_id: str, campaign_id: str) -> str:
    """A campaign's partition: the campaign item, its recipients and its events."""
    return _in(tenant_id, f"CAMP#{campaign_id}")


def campaign(tenant_id: str, campaign_id: str) -> dict[str, str]:
    return {"PK": campaign_partition(tenant_id, campaign_id), "SK": CAMPAIGN}


def campaign_content(tenant_id: str, campaign_id: str) -> dict[str, str]:
    """A campaign's HTML and text bodies (up to 300 KB), apart from the campaign item that
    every send and SES event ADDs to: an update is billed on its item's whole size."""
    return {"PK": campaign_partition(tenant_id, campaign_id), "SK": CAMPAIGN_CONTENT}


def campaigns_of_tenant(tenant_id: str) -> str:
    """GSI1 partition: a tenant's campaigns, by id (newest first)."""
    return _in(tenant_id, "CAMPAIGNS")


def recipient(tenant_id: str, campaign_id: str, contact_id: str) -> dict[str, str]:
    """One contact of a campaign's audience, in the campaign's partition."""
    return {
        "PK": campaign_partition(tenant_id, campaign_id),
        "SK": f"{RECIPIENT_PREFIX}{contact_id}",
    }


def recipients_in_status(tenant_id: str, campaign_id: str, status: str) -> str:
    """GSI3 partition: a campaign's recipients in one status, by contact id."""
    return _in(tenant_id, f"CAMP#{campaign_id}#RS#{status}")


def suppression(tenant_id: str, normalized_email: str) -> dict[str, str]:
    """An address the tenant must never email again (hard bounce, complaint)."""
    return {"PK": _in(tenant_id, f"SUPPRESS#{normalized_email}"), "SK": SUPPRESSION}


def email_settings(tenant_id: str) -> dict[str, str]:
    """The tenant's email settings (the postal address every campaign shows)."""
    return {"PK": _in(tenant_id, "SETTINGS"), "SK": EMAIL_SETTINGS}


def tenant_requests(tenant_id: str, second: int) -> dict[str, str]:
    """How many API requests the tenant made in one second (Unix time), as its functions'
    environments reported them (crm_core/tenant_quota.py); the item expires soon after."""
    return {"PK": _in(tenant_id, "REQUESTS"), "SK": f"S#{second}"}


def quota_of_test_sends(tenant_id: str, window: str) -> dict[str, str]:
    """How many test emails the tenant sent in one quota window (`window` names the hour,
    `2026-11-22T10`); the item expires after its window."""
    return {"PK": _in(tenant_id, "TESTSENDS"), "SK": f"{TEST_SEND_WINDOW_PREFIX}{window}"}


def sender_namespace(namespace: str) -> dict[str, str]:
    """Who owns a sender namespace on the shared sending domain (`<namespace>.<name>@`).

    Outside every tenant's partitions, as `lead_source_route`: tenant ids that differ only
    in case lower-case to one namespace, so the first tenant to use it claims it here."""
    return {"PK": f"SYS#SENDER_NS#{namespace}", "SK": UNIQUE}


CAMPAIGN = "CAMPAIGN"
CAMPAIGN_CONTENT = "CONTENT"
RECIPIENT_PREFIX = "R#"
SUPPRESSION = "SUPPRESSION"
EMAIL_SETTINGS = "EMAIL"
TEST_SEND_WINDOW_PREFIX = "HOUR#"


# Deals and pipelines ---------------------------------------------------------------------
# A pipeline's partition holds its current definition (PROFILE), every version of it
# (`V#<at>#<version>`, so the forecast can use the stages as they stood at any moment) and
# its board totals (BOARD). docs/decisions.md, 80.
BOARD = "BOARD"
VERSION_PREFIX = "V#"
HISTORY_PREFIX = "H#"
SNAPSHOT_PREFIX = "AT#"
CURRENT = "NOW"
CURRENCIES = "CURRENCIES"


def version_sort_key(at: str, version: int) -> str:
    """The sort key of one version of a record kept over time: ordered by time, then by
    version (two changes in one millisecond stay in order)."""
    return f"{at}#{version:010d}"


def pipeline(tenant_id: str, pipeline_id: str) -> dict[str, str]:
    return {"PK": pipeline_partition(tenant_id, pipeline_id), "SK": PROFILE}


def pipeline_partition(tenant_id: str, pipeline_id: str) -> str:
    return _in(tenant_id, f"PIPE#{pipeline_id}")


def pipeline_version(tenant_id: str, pipeline_id: str, at: str, version: int) -> dict[str, str]:
    return {
        "PK": pipeline_partition(tenant_id, pipeline_id),
        "SK": VERSION_PREFIX + version_sort_key(at, version),
    }


def pipeline_board(tenant_id: str, pipeline_id: str) -> dict[str, str]:
    """A pipeline's board totals: per stage and currency, the count and sum of its deals."""
    return {"PK": pipeline_partition(tenant_id, pipeline_id), "SK": BOARD}


def pipelines_of_tenant(tenant_id: str) -> str:
    """GSI1 partition: a tenant's pipelines, oldest first."""
    return _in(tenant_id, "PIPELINES")


def currency_settings(tenant_id: str) -> dict[str, str]:
    """The tenant's base currency and rates; its versions share the partition."""
    return {"PK": _in(tenant_id, CURRENCIES), "SK": PROFILE}


def deal_settings(tenant_id: str) -> dict[str, str]:
    """The tenant's deal settings (its lost reasons)."""
    return {"PK": _in(tenant_id, "DEALSETTINGS"), "SK": PROFILE}


def currency_settings_version(tenant_id: str, at: str, version: int) -> dict[str, str]:
    return {"PK": _in(tenant_id, CURRENCIES), "SK": VERSION_PREFIX + version_sort_key(at, version)}


# The `type` of a deal's item (an activity naming a deal checks that it is one).
DEAL_ITEM = "deal"
# The sort key of a contact's or a company's deal summary (`contact_deal_summary`).
SUMMARY = "SUMMARY"
# The sort keys of a contact's deal links: deal ids, ULIDs made by the CRM, whose first
# character is 0 to 7 (their time fits 48 bits); the contact's SUMMARY sorts after them.
DEAL_IDS = ("0" * 26, "7" + "Z" * 25)


def deal(tenant_id: str, deal_id: str) -> dict[str, str]:
    return {"PK": deal_partition(tenant_id, deal_id), "SK": PROFILE}


def deal_partition(tenant_id: str, deal_id: str) -> str:
    """A deal's item, its history (`H#<at>#<version>`), its outbox items and its activity
    links (`ACT#<at>#<activity id>`)."""
    return _in(tenant_id, f"DEAL#{deal_id}")


def deal_activity(tenant_id: str, deal_id: str, at: str, activity_id: str) -> dict[str, str]:
    """That an activity (in its contact's partition) is about a deal: in the deal's
    partition, by the activity's time, so the deal's timeline is one Query, newest first."""
    return {
        "PK": deal_partition(tenant_id, deal_id),
        "SK": ACTIVITY_PREFIX + time_sort_key(at, activity_id),
    }


def deal_history(tenant_id: str, deal_id: str, at: str, version: int) -> dict[str, str]:
    return {
        "PK": deal_partition(tenant_id, deal_id),
        "SK": HISTORY_PREFIX + version_sort_key(at, version),
    }


def deals_of_pipeline(tenant_id: str, pipeline_id: str) -> str:
    """GSI1 partition: a pipeline's deals by stage, then close date (`deal_stage_sort_key`)."""
    return _in(tenant_id, f"DEALS#P#{pipeline_id}")


def deal_stage_sort_key(stage_id: str, close_date: str, deal_id: str) -> str:
    return f"{stage_id}#{close_date}#{deal_id}"


def deals_of_owner(tenant_id: str, owner_id: str) -> str:
    """GSI2 partition: one owner's deals by close date."""
    return _in(tenant_id, f"DEALS#OWNER#{owner_id}")


def deals_of_company(tenant_id: str, company_id: str) -> str:
    """GSI3 partition: one company's deals by close date."""
    return _in(tenant_id, f"DEALS#CO#{company_id}")


def deals_in_status(tenant_id: str, status: str) -> str:
    """GSI4 partition: the deals of one status (open, won, lost) by close date."""
    return _in(tenant_id, f"DEALS#STATUS#{status}")


def deal_of_contact(tenant_id: str, contact_id: str, deal_id: str) -> dict[str, str]:
    """That a contact takes part in a deal: the deals of a contact are one Query."""
    return {"PK": deals_of_contact(tenant_id, contact_id), "SK": deal_id}


def deals_of_contact(tenant_id: str, contact_id: str) -> str:
    """A contact's deal links (sort keys in DEAL_IDS) and its deal summary (SUMMARY)."""
    return _in(tenant_id, f"DEALC#{contact_id}")


def contact_deal_summary(tenant_id: str, contact_id: str) -> dict[str, str]:
    """How many open and won deals a contact takes part in, and the won amounts: ADDed to
    in each deal's own transaction (crm_core/deals/summaries.py)."""
    return {"PK": deals_of_contact(tenant_id, contact_id), "SK": SUMMARY}


def company_deal_summary(tenant_id: str, company_id: str) -> dict[str, str]:
    """The same for a company's deals (apart from the company's item, which its own writes
    Put whole)."""
    return {"PK": _in(tenant_id, f"DEALSUM#CO#{company_id}"), "SK": SUMMARY}


def forecast_month(tenant_id: str, pipeline_id: str, month: str) -> dict[str, str]:
    """The forecast totals of a pipeline's deals closing in one month (`2027-03`), as they
    stand now; the same partition keeps every earlier state (`forecast_snapshot`)."""
    return {"PK": forecast_partition(tenant_id, pipeline_id, month), "SK": CURRENT}


def forecast_partition(tenant_id: str, pipeline_id: str, month: str) -> str:
    return _in(tenant_id, f"FC#{pipeline_id}#{month}")


def forecast_snapshot(
    tenant_id: str, pipeline_id: str, month: str, at: str, version: int
) -> dict[str, str]:
    return {
        "PK": forecast_partition(tenant_id, pipeline_id, month),
        "SK": SNAPSHOT_PREFIX + version_sort_key(at, version),
    }


# Support cases --------------------------------------------------------------------------
# A case's partition holds the case (CASE), its listing copy (LISTING: the same case under
# the lists the case item has no index for), its conversation (`MSG#<entry id>`, ULIDs, so
# oldest first), the emails it sent (`MAIL#<key>`) and its outbox items.
CASE = "CASE"
LISTING = "LISTING"
MESSAGE_PREFIX = "MSG#"
CASE_MAIL_PREFIX = "MAIL#"


def case_partition(tenant_id: str, case_id: str) -> str:
    return _in(tenant_id, f"CASE#{case_id}")


def case(tenant_id: str, case_id: str) -> dict[str, str]:
    return {"PK": case_partition(tenant_id, case_id), "SK": CASE}


def case_listing(tenant_id: str, case_id: str) -> dict[str, str]:
    return {"PK": case_partition(tenant_id, case_id), "SK": LISTING}


def case_message(tenant_id: str, case_id: str, entry_id: str) -> dict[str, str]:
    return {"PK": case_partition(tenant_id, case_id), "SK": MESSAGE_PREFIX + entry_id}


def cases_in_status(tenant_id: str, status: str) -> str:
    """GSI1 of a case item: the cases of one status, recently updated first."""
    return _in(tenant_id, f"CASES#STATUS#{status}")


def cases_of_queue(tenant_id: str, queue_id: str) -> str:
    """GSI2 of a case item: a queue's cases, recently updated first."""
    return _in(tenant_id, f"CASES#Q#{queue_id}")


def cases_of_assignee(tenant_id: str, assignee_id: str) -> str:
    """GSI3 of a case item: one agent's cases, recently updated first."""
    return _in(tenant_id, f"CASES#A#{assignee_id}")


def cases_of_contact(tenant_id: str, contact_id: str) -> str:
    """GSI4 of a case item: a contact's cases, recently updated first."""
    return _in(tenant_id, f"CASES#C#{contact_id}")


def cases_of_tenant(tenant_id: str) -> str:
    """GSI1 of a listing item: every case of the tenant, recently updated first."""
    return _in(tenant_id, "CASES")


def cases_of_priority(tenant_id: str, priority: str) -> str:
    """GSI2 of a listing item: the unsolved cases of one priority, recently updated first."""
    return _in(tenant_id, f"CASES#PRI#{priority}")


def cases_in_sla_state(tenant_id: str, state: str) -> str:
    """GSI3 of a listing item, only while the case is `breached` or `at_risk`: by due
    time, the most urgent first."""
    return _in(tenant_id, f"CASES#SLA#{state}")


def cases_of_company(tenant_id: str, company_id: str) -> str:
    """GSI4 of a listing item: a company's cases, recently updated first."""
    return _in(tenant_id, f"CASES#CO#{company_id}")


def case_message_id(tenant_id: str, digest: str) -> dict[str, str]:
    """That an email (by the digest of its Message-ID) belongs to a case: inbound replies
    that lost their reply address still thread by In-Reply-To and References."""
    return {"PK": _in(tenant_id, f"MAILID#{digest}"), "SK": UNIQUE}


def case_mail(tenant_id: str, case_id: str, mail_key: str) -> dict[str, str]:
    """One email the case sends (a public reply, the solved notice): claimed before SES is
    called and marked after, so a redelivered event never mails the customer twice."""
    return {"PK": case_partition(tenant_id, case_id), "SK": f"{CASE_MAIL_PREFIX}{mail_key}"}


def case_queue(tenant_id: str, queue_id: str) -> dict[str, str]:
    return {"PK": _in(tenant_id, f"QUEUE#{queue_id}"), "SK": PROFILE}


def queues_of_tenant(tenant_id: str) -> str:
    """GSI1 of a queue item: the tenant's queues by name."""
    return _in(tenant_id, "QUEUES")


def queue_mailbox(tenant_id: str, mailbox: str) -> dict[str, str]:
    """Which queue a mailbox of the tenant (`<namespace>.<mailbox>@<domain>`) is: claimed
    in the same transaction as the queue's change, so a mailbox is one queue's."""
    return {"PK": _in(tenant_id, f"QMAILBOX#{mailbox}"), "SK": UNIQUE}


def sla_policy(tenant_id: str) -> dict[str, str]:
    """The tenant's SLA policy (business hours, targets, warning share)."""
    return {"PK": _in(tenant_id, "SLAPOLICY"), "SK": PROFILE}


def case_rating(tenant_id: str, case_id: str) -> dict[str, str]:
    """A case's satisfaction rating: created once (`attribute_not_exists`)."""
    return {"PK": case_partition(tenant_id, case_id), "SK": "RATING"}


# Reports ---------------------------------------------------------------------------------
# A report's aggregates of one granularity are one partition, sorted by period and then by
# the dimensions' values, so a range of periods is one Query (`BETWEEN`). Each record that
# contributes keeps what it added last in a source item of its own.
def report_aggregates(tenant_id: str, report: str, granularity: str) -> str:
    return _in(tenant_id, f"AGG#{report}#{granularity}")


def report_aggregate(
    tenant_id: str, report: str, granularity: str, period: str, dims: str
) -> dict[str, str]:
    """One bucket's counters; `dims` is the dimensions' values, each percent-encoded."""
    return {"PK": report_aggregates(tenant_id, report, granularity), "SK": f"{period}#{dims}"}


def report_settings(tenant_id: str) -> dict[str, str]:
    """The tenant's report settings: the time zone its periods are days of."""
    return {"PK": _in(tenant_id, "REPORTSETTINGS"), "SK": PROFILE}


def report_source(tenant_id: str, kind: str, record_id: str) -> dict[str, str]:
    """What one record (an activity, a deal...) last added to the reports."""
    return {"PK": _in(tenant_id, f"AGGSRC#{kind}#{record_id}"), "SK": UNIQUE}


# Outbox ---------------------------------------------------------------------------------
def outbox_event(partition: str, event_id: str) -> dict[str, str]:
    """A domain event, written in the partition of the item it is about (so one Query gives
    an item's recent events) and in the same transaction as the change."""
    return {"PK": partition, "SK": f"{OUTBOX_PREFIX}{event_id}"}


OUTBOX_PREFIX = "OUTBOX#"


# Idempotency records (Powertools) --------------------------------------------------------
def idempotency_partition(tenant_id: str) -> str:
    return _in(tenant_id, "IDEMPOTENCY")
