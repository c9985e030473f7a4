"""/settings/sla: business hours, targets per priority and the warning share."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from cases_api.context import app, policy_store
from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.cases.sla_policy import SlaPolicy, SlaPolicyBody

router = Router()


@router.get(
    "/settings/sla",
    summary="The SLA policy",
    description="Until a tenant sets one: weekdays 09:00 to 17:00 UTC and default targets.",
    responses=http.returns(200, "The policy", SlaPolicy),
)
@http.guard(app, Action.CASE_READ)
def get_sla(caller: Principal) -> Response[str]:
    policy = policy_store.get(caller.tenant_id)
    return http.json_response(200, policy, version=policy.version)


@router.put(
    "/settings/sla",
    summary="Set the SLA policy",
    description=(
        "Business hours (an IANA time zone, intervals per weekday, `24:00` allowed as an end, "
        "holidays), targets per priority in business minutes (first response, next response, "
        "resolution; one left out is not tracked) and the warning share. Cases follow a new "
        "policy from their next change."
    ),
    responses=http.returns(200, "The policy", SlaPolicy),
)
@http.guard(app, Action.CASE_ADMIN)
def put_sla(caller: Principal, body: SlaPolicyBody) -> Response[str]:
    policy = policy_store.replace(
        caller.tenant_id, body, http.if_match(app), http.origin(app, caller)
    )
    return http.json_response(200, policy, version=policy.version)
