"""/settings/email: what every campaign email of the tenant shows (its postal address)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from campaigns_api.context import app, email_settings, logger
from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.campaigns.campaign_models import EmailSettings, StoredEmailSettings

router = Router()


@router.get(
    "/settings/email",
    summary="The tenant's email settings (404 until they are PUT)",
    responses=http.returns(200, "The settings", StoredEmailSettings),
)
@http.guard(app, Action.CAMPAIGN_READ)
def get_email_settings(caller: Principal) -> Response[str]:
    found = email_settings.get(caller.tenant_id)
    return http.json_response(200, found, version=found.version)


@router.put(
    "/settings/email",
    summary="Set the tenant's email settings (admin, marketing)",
    description="Replaces them whole; If-Match is optional (a stale one is 412).",
    responses=http.returns(200, "The settings", StoredEmailSettings),
)
@http.guard(app, Action.CAMPAIGN_WRITE)
def put_email_settings(caller: Principal, body: EmailSettings) -> Response[str]:
    stored, created = email_settings.put(caller.tenant_id, body, http.if_match(app), caller.user_id)
    logger.info("email settings saved", extra={"version": stored.version, "first_save": created})
    return http.json_response(200, stored, version=stored.version)
