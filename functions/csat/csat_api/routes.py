"""The two routes' work: `GET` shows the case's rating form and records nothing (mail
scanners and link previews follow links); `POST` records the rating, once
(crm_core/cases/satisfaction.py).

A second rating is not an error to the customer: the page says the case was rated before,
with the first score, which stays. A JSON client gets 409 problem+json with that `score`,
so that it cannot take the answer for a recorded rating.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from crm_core.cases.csat_tokens import CsatClaims
from crm_core.cases.satisfaction import AlreadyRated, NotRatable, may_be_rated
from crm_core.errors import CrmError, NotFound
from crm_core.events.envelope import Origin
from crm_core.records.case import Case, RatingCreate, Satisfaction
from csat_api import pages, request
from csat_api.context import logger, metrics, ratings, token_key
from csat_api.request import Refusal

PRODUCER = "csat"
GONE = "This case no longer exists."
NOT_SOLVED = "This case is not solved yet: it can be rated once it is."


def answer(event: dict[str, Any]) -> dict[str, Any]:
    """The request's answer: a page, JSON, or an error in the form the client asked for."""
    as_json = request.wants_json(event)
    method = request.http_method(event).upper()
    try:
        if method not in ("GET", "POST"):
            raise Refusal(405, "Method not allowed", "method-not-allowed", "use GET or POST")
        # Before the token: an oversized body is refused without a KMS call or a read.
        raw = request.body(event) if method == "POST" else None
        token, claims = request.claims(event, token_key)
        logger.append_keys(tenant_id=claims.tenant_id, case_id=claims.case_id)
        if raw is None:
            return show_page(token, claims, as_json)
        return rate(event, token, claims, raw, as_json)
    except Refusal as refused:
        logger.info("csat refused", extra={"status": refused.status})
        metrics.add_metric(name="CsatRefused", unit=MetricUnit.Count, value=1)
        return pages.error(
            refused.status, refused.title, refused.slug, refused.detail, as_json, **refused.extra
        )
    except CrmError as error:  # a busy table (429): try again
        logger.warning("csat not recorded", extra={"status": error.status})
        return pages.error(error.status, error.title, error.type_slug, error.detail, as_json)
    except Exception:
        logger.exception("csat failed")
        metrics.add_metric(name="CsatFailed", unit=MetricUnit.Count, value=1)
        detail = "Nothing was recorded; please try again."
        return pages.error(500, "Internal error", "internal", detail, as_json)


def _case(claims: CsatClaims) -> Case:
    try:
        return ratings.case(claims.tenant_id, claims.case_id)
    except NotFound:
        raise Refusal(404, "Not found", "not-found", GONE) from None


def show_page(token: str, claims: CsatClaims, as_json: bool) -> dict[str, Any]:
    case = _case(claims)
    metrics.add_metric(name="CsatPageShown", unit=MetricUnit.Count, value=1)
    rated = case.satisfaction
    if rated is None and not may_be_rated(case.model_dump()):
        raise Refusal(409, "Conflict", "conflict", NOT_SOLVED)
    if as_json:
        body: dict[str, Any] = {"case": {"subject": case.subject}, "rated": rated is not None}
        if rated is not None:
            body["score"] = rated.score
        return pages.json_reply(200, body)
    if rated is not None:
        return pages.rated_page(case.subject, rated, just_now=False)
    return pages.rating_page(token, case.subject)


def rate(
    event: dict[str, Any], token: str, claims: CsatClaims, raw: bytes, as_json: bool
) -> dict[str, Any]:
    try:
        body = request.rating(event, raw)
    except Refusal as refused:
        if as_json or refused.status != 422:
            raise
        # The page again, saying what to fix (a browser that ignores `required`).
        logger.info("csat refused", extra={"status": refused.status})
        return pages.rating_page(token, _case(claims).subject, status=422, problem=refused.detail)
    return record(claims, body, as_json, request.request_id(event))


def record(
    claims: CsatClaims, body: RatingCreate, as_json: bool, request_id: str | None
) -> dict[str, Any]:
    origin = Origin.system(PRODUCER, request_id)
    try:
        case = ratings.rate(claims.tenant_id, claims.case_id, body.score, body.comment, origin)
    except NotFound:
        raise Refusal(404, "Not found", "not-found", GONE) from None
    except AlreadyRated as before:
        logger.info("csat", extra={"outcome": "already_rated"})
        if as_json:
            return pages.error(
                409, "Conflict", "conflict", before.detail, True, score=before.satisfaction.score
            )
        return pages.rated_page(before.case.subject, before.satisfaction, just_now=False)
    except NotRatable:
        raise Refusal(409, "Conflict", "conflict", NOT_SOLVED) from None
    logger.info("csat", extra={"outcome": "rated", "score": body.score})
    metrics.add_metric(name="CaseRated", unit=MetricUnit.Count, value=1)
    if as_json:
        return pages.json_reply(
            200, {"case": {"subject": case.subject}, "rated": True, "score": body.score}
        )
    recorded = case.satisfaction or Satisfaction(score=body.score, rated_at=case.updated_at)
    return pages.rated_page(case.subject, recorded, just_now=True)
