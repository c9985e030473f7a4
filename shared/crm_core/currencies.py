"""ISO 4217 currencies a deal may be in, with their minor units (the digits after the
point), and amounts as exact decimals: parsed from strings (never floats), converted to a
base currency at a rate, rounded once, at the end, to the currency's minor unit.

The table is ISO 4217's list of active currencies (as amended to 2025: ZWG for ZWL, XCG for
ANG, SLE for SLL, VED beside VES), without the codes that are not money a deal is priced in:
funds and units of account (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW), precious metals
(XAU, XAG, XPD, XPT), bond-market units (XBA to XBD), SDR and the ADB unit (XDR, XUA), SUCRE
(XSU), and the test and no-currency codes (XTS, XXX). Minor units are ISO's: 0 for the
currencies below, 3 for the dinars and rials listed, 2 for every other one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

_TWO_DIGITS = """
AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD
CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP
GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD
LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB
PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC
SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VED VES WST XCD XCG YER ZAR ZMW
ZWG
"""
_NO_DIGITS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DIGITS = "BHD IQD JOD KWD LYD OMR TND"

MINOR_DIGITS: dict[str, int] = {
    **dict.fromkeys(_TWO_DIGITS.split(), 2),
    **dict.fromkeys(_NO_DIGITS.split(), 0),
    **dict.fromkeys(_THREE_DIGITS.split(), 3),
}

# DynamoDB keeps 38 significant digits of a number; every sum and product here is exact
# within them (amounts have at most 15 whole digits, rates at most 12 significant ones).
EXACT = Context(prec=38)


def exact() -> AbstractContextManager[Context]:
    """Decimal arithmetic within DynamoDB's 38 digits, never rounded (Python's default
    context keeps 28): `with exact(): ...` around sums and products of money."""
    return localcontext(EXACT)


MAX_WHOLE_DIGITS = 15
MAX_RATE_DIGITS = 12
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,14})(?:\.([0-9]+))?")
_RATE = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")


class MoneyError(ValueError):
    """An amount, a currency or a rate that is not one: the message says why."""


def minor_digits(currency: str) -> int:
    digits = MINOR_DIGITS.get(currency)
    if digits is None:
        raise MoneyError(f"{currency!r} is not an ISO 4217 currency code a deal can be in")
    return digits


def parse_amount(text: object, currency: str) -> Decimal:
    """An amount of `currency` from its decimal string ("12500.00", "12500", "0.5"): not
    negative, at most 15 whole digits and the currency's minor digits after the point. A
    number that is not a string (a JSON float) is refused: floats cannot say 0.10."""
    digits = minor_digits(currency)
    if not isinstance(text, str):
        raise MoneyError('an amount is a decimal string, as "12500.00", never a number')
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise MoneyError(
            f"{text[:40]!r} is not an amount: digits, at most {MAX_WHOLE_DIGITS} before an "
            "optional point, no sign, exponent or spaces"
        )
    fraction = match.group(2)
    if fraction is not None and len(fraction) > digits:
        raise MoneyError(
            f"{currency} has {digits} digit(s) after the point; {text!r} has {len(fraction)}"
        )
    return Decimal(text)


def format_amount(amount: Decimal, currency: str) -> str:
    """The amount as clients see it: exactly the currency's minor digits ("12500.00")."""
    return f"{round_amount(amount, currency):f}"


def round_amount(amount: Decimal, currency: str) -> Decimal:
    """To the currency's minor unit, half up (a converted sum is rounded once, here)."""
    quantum = Decimal(1).scaleb(-minor_digits(currency))
    return amount.quantize(quantum, rounding=ROUND_HALF_UP, context=EXACT)


def parse_rate(text: object) -> Decimal:
    """How many units of the base currency one unit of another is worth ("0.92"): a
    positive decimal string of at most 12 significant digits."""
    if not isinstance(text, str):
        raise MoneyError('a rate is a decimal string, as "0.92", never a number')
    match = _RATE.fullmatch(text)
    if match is None:
        raise MoneyError(f"{text[:40]!r} is not a rate: digits with an optional point")
    rate = Decimal(text)
    if rate <= 0:
        raise MoneyError("a rate is above 0")
    if len(rate.normalize().as_tuple().digits) > MAX_RATE_DIGITS:
        raise MoneyError(f"a rate has at most {MAX_RATE_DIGITS} significant digits")
    return rate


def to_base(amount: Decimal, currency: str, base: str, rates: Mapping[str, Decimal]) -> Decimal:
    """`amount` of `currency` in the base currency, exactly (not rounded: sums of converted
    amounts are rounded once, at the end). A currency without a rate is a MoneyError:
    different currencies are never added together unconverted."""
    if currency == base:
        return amount
    rate = rates.get(currency)
    if rate is None:
        raise MoneyError(f"no rate from {currency} to {base}: set it in /settings/currencies")
    return EXACT.multiply(amount, rate)


def total_in_base(
    amounts: list[tuple[Decimal, str]], base: str, rates: Mapping[str, Decimal]
) -> Decimal:
    """The sum of `amounts` (each with its currency) in the base currency, rounded once."""
    total = Decimal(0)
    for amount, currency in amounts:
        total = EXACT.add(total, to_base(amount, currency, base, rates))
    return round_amount(total, base)
