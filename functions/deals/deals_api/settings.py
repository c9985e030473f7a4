"""/settings/currencies and /settings/deals: what a tenant's deals are priced and lost by."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.deals import deal_settings
from crm_core.deals.currency_settings import CurrencySettings, CurrencySettingsBody, to_settings
from crm_core.deals.deal_settings import DealSettings, DealSettingsBody
from deals_api.context import app, currency_store, settings_store

router = Router()


@router.get(
    "/settings/currencies",
    summary="The base currency and exchange rates",
    responses=http.returns(200, "The settings", CurrencySettings),
)
@http.guard(app, Action.DEAL_READ)
def get_currencies(caller: Principal) -> Response[str]:
    settings = to_settings(currency_store.item(caller.tenant_id))
    return http.json_response(200, settings, version=settings.version)


@router.put(
    "/settings/currencies",
    summary="Set the base currency and exchange rates",
    description=(
        "`rates` says what one unit of each currency is worth in the base currency. Open "
        "deals convert at the rates in force when read; a won or lost deal keeps the rate "
        "of its closing. A deal's currency needs a rate."
    ),
    responses=http.returns(200, "The settings", CurrencySettings),
)
@http.guard(app, Action.PIPELINE_ADMIN)
def put_currencies(caller: Principal, body: CurrencySettingsBody) -> Response[str]:
    settings = currency_store.replace(
        caller.tenant_id, body, http.if_match(app), http.origin(app, caller)
    )
    return http.json_response(200, settings, version=settings.version)


@router.get(
    "/settings/deals",
    summary="The tenant's lost reasons",
    responses=http.returns(200, "The settings", DealSettings),
)
@http.guard(app, Action.DEAL_READ)
def get_deal_settings(caller: Principal) -> Response[str]:
    found = deal_settings.to_settings(settings_store.item(caller.tenant_id))
    return http.json_response(200, found, version=found.version)


@router.put(
    "/settings/deals",
    summary="Set the tenant's lost reasons",
    description=(
        "The reasons a deal may be lost, in the order forms show them; a lost deal names one "
        "(`lost_reason.reason`), with free text beside it (`note`). A reason taken out stays "
        "on the deals that have it."
    ),
    responses=http.returns(200, "The settings", DealSettings),
)
@http.guard(app, Action.PIPELINE_ADMIN)
def put_deal_settings(caller: Principal, body: DealSettingsBody) -> Response[str]:
    saved = settings_store.replace(
        caller.tenant_id, body, http.if_match(app), http.origin(app, caller)
    )
    return http.json_response(200, saved, version=saved.version)
