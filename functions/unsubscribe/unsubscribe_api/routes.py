"""The two routes' work: `GET` shows the page and changes nothing (mail scanners and link
previews follow links); `POST` unsubscribes at once (crm_core/campaigns/unsubscribing.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from crm_core.campaigns.unsubscribe_tokens import TokenClaims
from crm_core.campaigns.unsubscribing import (
    TEST_CONTACT_ID,
    UnsubscribeOutcome,
    find_contact,
    is_unsubscribed,
)
from crm_core.errors import CrmError
from crm_core.events.envelope import Origin
from unsubscribe_api import pages, request
from unsubscribe_api.context import logger, metrics, table, token_key, unsubscriber
from unsubscribe_api.request import Refusal

PRODUCER = "unsubscribe"


def answer(event: dict[str, Any]) -> dict[str, Any]:
    """The request's answer: a page, JSON, or an error in the form the client asked for."""
    as_json = request.wants_json(event)
    method = request.http_method(event).upper()
    try:
        if method not in ("GET", "POST"):
            raise Refusal(405, "Method not allowed", "method-not-allowed", "use GET or POST")
        # Before the token: an oversized body is refused without a KMS call or a read.
        body = request.form(event) if method == "POST" else None
        token, claims = request.claims(event, token_key)
        logger.append_keys(tenant_id=claims.tenant_id, campaign_id=claims.campaign_id)
        if body is None:
            return show_page(token, claims, as_json)
        return unsubscribe(claims, body, as_json, request.request_id(event))
    except Refusal as refused:
        logger.info("unsubscribe refused", extra={"status": refused.status})
        metrics.add_metric(name="UnsubscribeRefused", unit=MetricUnit.Count, value=1)
        return pages.error(refused.status, refused.title, refused.slug, refused.detail, as_json)
    except CrmError as error:  # a busy table (429): try again
        logger.warning("unsubscribe not done", extra={"status": error.status})
        return pages.error(error.status, error.title, error.type_slug, error.detail, as_json)
    except Exception:
        # A 5xx tells a mailbox provider to retry; a person sees "try again".
        logger.exception("unsubscribe failed")
        metrics.add_metric(name="UnsubscribeFailed", unit=MetricUnit.Count, value=1)
        detail = "Nothing was changed; please try again."
        return pages.error(500, "Internal error", "internal", detail, as_json)


def show_page(token: str, claims: TokenClaims, as_json: bool) -> dict[str, Any]:
    contact = None
    if claims.contact_id != TEST_CONTACT_ID:
        contact = find_contact(table, claims.tenant_id, claims.contact_id, consistent=False)
    address = pages.mask(contact.get("email")) if contact else None
    already = contact is not None and is_unsubscribed(contact)
    metrics.add_metric(name="UnsubscribePageShown", unit=MetricUnit.Count, value=1)
    if as_json:
        return pages.json_reply(200, {"email": address, "unsubscribed": already})
    if already:
        return pages.unsubscribed_page(address, just_now=False)
    return pages.confirm_page(token, address)


def unsubscribe(
    claims: TokenClaims, form: dict[str, list[str]], as_json: bool, request_id: str | None
) -> dict[str, Any]:
    method = request.method(form)
    done = unsubscriber.unsubscribe(
        claims.tenant_id,
        claims.contact_id,
        claims.campaign_id,
        method,
        Origin.system(PRODUCER, request_id),
    )
    logger.info(
        "unsubscribe",
        extra={
            "outcome": done.outcome.value,
            "method": method.value,
            "contact_id": done.contact_id,
            "event_id": done.event_id,
        },
    )
    if done.outcome == UnsubscribeOutcome.UNSUBSCRIBED:
        metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
    if as_json:
        return pages.json_reply(200, {"unsubscribed": True, "email": pages.mask(done.email)})
    return pages.unsubscribed_page(pages.mask(done.email), just_now=True)
