"""Keys: every partition is inside its tenant; sort keys sort as the values they stand for."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from hypothesis import assume, given
from hypothesis import strategies as st

from crm_core import keys
from tests.unit.strategies import tenant_ids, ulids

# Each key builder, with the arguments it takes after the tenant.
PARTITIONS: dict[str, Callable[[str, str], str]] = {
    "contact": lambda t, x: keys.contact(t, x)["PK"],
    "contact_email": lambda t, x: keys.contact_email(t, x)["PK"],
    "tag_member": lambda t, x: keys.tag_member(t, x, "01ARZ3NDEKTSV4RRFFQ69G5FAV")["PK"],
    "tag_partition": lambda t, x: keys.tag_partition(t, x),
    "contacts_by_updated": lambda t, x: keys.contacts_by_updated(t),
    "contacts_by_stage": lambda t, x: keys.contacts_by_stage(t, x, "30:5"),
    "contacts_by_owner": lambda t, x: keys.contacts_by_owner(t, x),
    "contacts_by_company": lambda t, x: keys.contacts_by_company(t, x),
    "company": lambda t, x: keys.company(t, x)["PK"],
    "company_domain": lambda t, x: keys.company_domain(t, x)["PK"],
    "companies_by_name": lambda t, x: keys.companies_by_name(t),
    "idempotency_partition": lambda t, x: keys.idempotency_partition(t),
    "activity": lambda t, x: keys.activity(t, x, "01ARZ3NDEKTSV4RRFFQ69G5FAV")["PK"],
    "activities_of_type": lambda t, x: keys.activities_of_type(t, x, "call"),
    "tasks_of_assignee": lambda t, x: keys.tasks_of_assignee(t, x, "open"),
    "tasks_of_tenant": lambda t, x: keys.tasks_of_tenant(t, x),
    "lead_source": lambda t, x: keys.lead_source(t, x)["PK"],
    "lead_sources_of_tenant": lambda t, x: keys.lead_sources_of_tenant(t),
    "lead": lambda t, x: keys.lead(t, x)["PK"],
    "deliveries_of_source": lambda t, x: keys.deliveries_of_source(t, x),
    "deliveries_in_status": lambda t, x: keys.deliveries_in_status(t, x, "accepted"),
    "lead_delivery_claim": lambda t, x: keys.lead_delivery_claim(t, x, "ab" * 32)["PK"],
    "lead_external_claim": lambda t, x: keys.lead_external_claim(t, x, "cd" * 32)["PK"],
    "scoring_model": lambda t, x: keys.scoring_model(t)["PK"],
    "scoring_model_version": lambda t, x: keys.scoring_model_version(t, 3)["PK"],
    "scoring_ranks": lambda t, x: keys.scoring_ranks(t)["PK"],
    "score_change": lambda t, x: keys.score_change(t, x, "01ARZ3NDEKTSV4RRFFQ69G5FAV")["PK"],
    "scoring_job": lambda t, x: keys.scoring_job(t, x)["PK"],
    "scoring_job_of_version": lambda t, x: keys.scoring_job_of_version(t, 4)["PK"],
    "scoring_job_slot": lambda t, x: keys.scoring_job_slot(t, x)["PK"],
    "segment": lambda t, x: keys.segment(t, x)["PK"],
    "campaign_partition": lambda t, x: keys.campaign_partition(t, x),
    "campaign": lambda t, x: keys.campaign(t, x)["PK"],
    "campaign_content": lambda t, x: keys.campaign_content(t, x)["PK"],
    "campaigns_of_tenant": lambda t, x: keys.campaigns_of_tenant(t),
    "recipient": lambda t, x: keys.recipient(t, x, "01ARZ3NDEKTSV4RRFFQ69G5FAV")["PK"],
    "recipients_in_status": lambda t, x: keys.recipients_in_status(t, x, "queued"),
    "suppression": lambda t, x: keys.suppression(t, x)["PK"],
    "email_settings": lambda t, x: keys.email_settings(t)["PK"],
    "quota_of_test_sends": lambda t, x: keys.quota_of_test_sends(t, x)["PK"],
    "pipeline": lambda t, x: keys.pipeline(t, x)["PK"],
    "pipeline_partition": lambda t, x: keys.pipeline_partition(t, x),
    "pipeline_version": lambda t, x: keys.pipeline_version(t, x, "2027-01-01T00:00:00.000Z", 2)[
        "PK"
    ],
    "pipeline_board": lambda t, x: keys.pipeline_board(t, x)["PK"],
    "pipelines_of_tenant": lambda t, x: keys.pipelines_of_tenant(t),
    "currency_settings": lambda t, x: keys.currency_settings(t)["PK"],
    "deal_settings": lambda t, x: keys.deal_settings(t)["PK"],
    "currency_settings_version": lambda t, x: keys.currency_settings_version(
        t, "2027-01-01T00:00:00.000Z", 3
    )["PK"],
    "deal": lambda t, x: keys.deal(t, x)["PK"],
    "deal_partition": lambda t, x: keys.deal_partition(t, x),
    "deal_history": lambda t, x: keys.deal_history(t, x, "2027-01-01T00:00:00.000Z", 1)["PK"],
    "deals_of_pipeline": lambda t, x: keys.deals_of_pipeline(t, x),
    "deals_of_owner": lambda t, x: keys.deals_of_owner(t, x),
    "deals_of_company": lambda t, x: keys.deals_of_company(t, x),
    "deals_in_status": lambda t, x: keys.deals_in_status(t, x),
    "deal_of_contact": lambda t, x: keys.deal_of_contact(t, x, "01ARZ3NDEKTSV4RRFFQ69G5FAV")["PK"],
    "deals_of_contact": lambda t, x: keys.deals_of_contact(t, x),
    "deal_activity": lambda t, x: keys.deal_activity(
        t, x, "2027-01-01T00:00:00.000Z", "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    )["PK"],
    "contact_deal_summary": lambda t, x: keys.contact_deal_summary(t, x)["PK"],
    "company_deal_summary": lambda t, x: keys.company_deal_summary(t, x)["PK"],
    "forecast_month": lambda t, x: keys.forecast_month(t, "default", x)["PK"],
    "forecast_partition": lambda t, x: keys.forecast_partition(t, "default", x),
    "forecast_snapshot": lambda t, x: keys.forecast_snapshot(
        t, x, "2027-03", "2027-01-01T00:00:00.000Z", 4
    )["PK"],
    "tenant_requests": lambda t, x: keys.tenant_requests(t, len(x))["PK"],
    "segments_of_tenant": lambda t, x: keys.segments_of_tenant(t),
    "case_partition": lambda t, x: keys.case_partition(t, x),
    "case": lambda t, x: keys.case(t, x)["PK"],
    "case_listing": lambda t, x: keys.case_listing(t, x)["PK"],
    "case_message": lambda t, x: keys.case_message(t, x, "01ARZ3NDEKTSV4RRFFQ69G5FAV")["PK"],
    "cases_in_status": lambda t, x: keys.cases_in_status(t, x),
    "cases_of_queue": lambda t, x: keys.cases_of_queue(t, x),
    "cases_of_assignee": lambda t, x: keys.cases_of_assignee(t, x),
    "cases_of_contact": lambda t, x: keys.cases_of_contact(t, x),
    "cases_of_tenant": lambda t, x: keys.cases_of_tenant(t),
    "cases_of_priority": lambda t, x: keys.cases_of_priority(t, x),
    "cases_in_sla_state": lambda t, x: keys.cases_in_sla_state(t, x),
    "cases_of_company": lambda t, x: keys.cases_of_company(t, x),
    "case_message_id": lambda t, x: keys.case_message_id(t, x)["PK"],
    "case_queue": lambda t, x: keys.case_queue(t, x)["PK"],
    "queues_of_tenant": lambda t, x: keys.queues_of_tenant(t),
    "queue_mailbox": lambda t, x: keys.queue_mailbox(t, x)["PK"],
    "sla_policy": lambda t, x: keys.sla_policy(t)["PK"],
    "case_rating": lambda t, x: keys.case_rating(t, x)["PK"],
    "case_mail": lambda t, x: keys.case_mail(t, x, "reply#01ARZ3NDEKTSV4RRFFQ69G5FAV")["PK"],
    "report_aggregates": lambda t, x: keys.report_aggregates(t, x, "day"),
    "report_aggregate": lambda t, x: keys.report_aggregate(t, x, "day", "2026-12-07", "a")["PK"],
    "report_source": lambda t, x: keys.report_source(t, "activity", x)["PK"],
    "report_settings": lambda t, x: keys.report_settings(t)["PK"],
}
values = st.text(min_size=1, max_size=60)


def test_every_tenant_key_builder_is_checked() -> None:
    builders = {
        name
        for name, fn in inspect.getmembers(keys, inspect.isfunction)
        if fn.__module__ == keys.__name__
        and list(inspect.signature(fn).parameters)[:1] == ["tenant_id"]
    }
    # tenant_prefix and _in are what the builders build on, not keys of their own.
    assert builders - {"tenant", "tenant_prefix", "_in"} == set(PARTITIONS)


@given(tenant_ids, values)
def test_every_partition_key_starts_with_its_tenant(tenant: str, value: str) -> None:
    for name, build in PARTITIONS.items():
        assert build(tenant, value).startswith(f"T#{tenant}#"), name


@given(tenant_ids, tenant_ids, values)
def test_no_partition_of_one_tenant_is_inside_another(a: str, b: str, value: str) -> None:
    assume(a != b)
    for name, build in PARTITIONS.items():
        assert not build(a, value).startswith(f"T#{b}#"), name


times = st.datetimes().map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
)


@given(times, times, ulids)
def test_time_sort_key_orders_like_the_times(a: str, b: str, item: str) -> None:
    assume(len(a) == len(b))  # four-digit years, as clock.now_iso writes them
    assert (keys.time_sort_key(a, item) < keys.time_sort_key(b, item)) == (a < b)


names = st.text(st.characters(min_codepoint=32, codec="utf-8"), min_size=1, max_size=200)


@given(names, names, ulids, ulids)
def test_company_names_sort_case_insensitively(a: str, b: str, id_a: str, id_b: str) -> None:
    fa, fb = keys.company_name_prefix(a), keys.company_name_prefix(b)
    assume(fa != fb)
    assert (keys.company_name_sort_key(a, id_a) < keys.company_name_sort_key(b, id_b)) == (fa < fb)


def test_a_name_sorts_before_its_longer_names() -> None:
    ordered = ["Acme", "acme corp", "ACME Labs", "Acme\tTabs", "Acme!", "acme-ops", "Acmes"]
    sort_keys = [keys.company_name_sort_key(name, "01ARZ3NDEKTSV4RRFFQ69G5FAV") for name in ordered]
    assert sort_keys == sorted(sort_keys)
    # Whatever the ids: a name's key sorts below the key of any longer name.
    assert keys.company_name_sort_key("Acme", "Z" * 26) < keys.company_name_sort_key(
        "Acme 0", "0" * 26
    )


@given(names, st.data(), ulids)
def test_a_name_matches_every_prefix_of_itself(name: str, data: st.DataObject, item: str) -> None:
    prefix = name[: data.draw(st.integers(1, len(name)))]
    sort_key = keys.company_name_sort_key(name, item)
    assert sort_key.startswith(keys.company_name_prefix(prefix))
    assert sort_key.startswith(keys.company_name_prefix(prefix.upper()))


@given(st.text(max_size=200), ulids)
def test_a_company_name_key_fits_dynamodb(name: str, item: str) -> None:
    """A sort key holds at most 1024 bytes, whatever the name's characters fold into."""
    assert len(keys.company_name_sort_key(name, item).encode("utf-8", "surrogatepass")) <= 1024


def test_a_name_that_folds_longer_still_fits() -> None:
    name = "\u0390" * 200  # each folds into three characters of two bytes
    assert len(keys.company_name_sort_key(name, "01ARZ3NDEKTSV4RRFFQ69G5FAV").encode()) <= 1024


def test_the_overdue_watch_is_the_one_partition_outside_every_tenant() -> None:
    # Read only by the scheduled overdue check (docs/decisions.md); no tenant id can make a
    # tenant partition collide with it, as every tenant partition starts with "T#".
    shards = {
        keys.task_due_watch(task)
        for task in ("01ARZ3NDEKTSV4RRFFQ69G5FA" + c for c in "0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    }
    assert shards == {keys.task_due_shard(n) for n in range(keys.TASK_DUE_SHARDS)}
    assert all(shard.startswith("SYS#") for shard in shards)


@given(st.integers(min_value=0, max_value=2**48 - 1), st.integers(min_value=0, max_value=2**48 - 1))
def test_ulid_time_prefixes_sort_like_their_times(a: int, b: int) -> None:
    from crm_core.ids import new_ulid, ulid_ms, ulid_time_prefix

    assert (ulid_time_prefix(a) < ulid_time_prefix(b)) == (a < b)
    assert ulid_ms(new_ulid(a)) == a
    assert new_ulid(a).startswith(ulid_time_prefix(a))


def test_a_partition_keys_kind_is_read_after_the_tenant_only() -> None:
    from crm_core import keys

    assert keys.is_email_claim(keys.contact_email("acme", "ada@example.com")["PK"])
    assert not keys.is_email_claim(keys.contact("acme", "01ARZ3NDEKTSV4RRFFQ69G5FAV")["PK"])
    # A tag or an address that spells a kind does not make its partition that kind.
    assert not keys.is_email_claim(keys.tag_partition("acme", "EMAIL#x"))
    assert not keys.is_suppression(keys.contact_email("acme", "#SUPPRESS#@example.com")["PK"])
    assert keys.is_suppression(keys.suppression("acme", "ada@example.com")["PK"])
    assert keys.is_company(keys.company("acme", "01ARZ3NDEKTSV4RRFFQ69G5FAV")["PK"])
    assert keys.is_domain_claim(keys.company_domain("acme", "example.com")["PK"])
    assert not keys.is_company("not a key")


def test_the_builders_keep_their_key_shapes() -> None:
    from crm_core import keys

    assert keys.contact("acme", "x")["PK"].startswith(keys.tenant_prefix("acme"))
    assert keys.campaigns_of_tenant("acme") == "T#acme#CAMPAIGNS"
    assert keys.scoring_model("acme") == {"PK": "T#acme#SCORING", "SK": "MODEL"}
