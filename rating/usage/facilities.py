"""Facilities paid per use: a gym entry, a pool slot, a laundry cycle, an EV
charging session by kWh or minutes, from a card swipe or a QR scan. A use is
priced exactly (price x quantity, rounded once to the minor unit by the
site's rule) and becomes one `use` movement of the facility's wallet: it
never takes the wallet below 0, so a wallet that cannot pay refuses it with
nothing written."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from rating.fixedpoint import exact_units, round_div
from rating.model.site import PRICE_DECIMALS, Site
from rating.prepaid import errors
from rating.prepaid.records import Movement
from rating.usage.settings import Facility, UsageSettings

QUANTITY_DECIMALS = 3  # kWh to the Wh, minutes to the millisecond's neighbour
QUANTITY_MAX = Decimal(10) ** 6
SOURCES = ("card", "qr", "staff")


@dataclass(frozen=True)
class Use:
    key: str  # idempotency key: the reader's transaction id
    account_id: str
    facility: str
    quantity: str = "1"  # uses (1 for a per-use facility), kWh or minutes, as sent
    source: str = "card"  # SOURCES: what the resident showed
    reference: str = ""  # the card number or the QR code's payload


def facility_of(settings: UsageSettings, use: Use) -> Facility:
    facility = settings.facilities.get(use.facility)
    if facility is None:
        known = ", ".join(settings.facilities) or "none"
        raise errors.InvalidArgument(f"unknown facility {use.facility!r} (this site has: {known})",
                                     field="facility")
    return facility


def quantity_units(facility: Facility, text: str) -> int:
    """The quantity in 10^-3 units; a per-use facility takes whole uses."""
    try:
        quantity = Decimal(text)
    except (InvalidOperation, TypeError):
        raise errors.InvalidArgument(f"quantity {text!r} is not a number", field="quantity") from None
    units = exact_units(quantity, QUANTITY_DECIMALS) if quantity.is_finite() else None
    if units is None or not 0 < quantity < QUANTITY_MAX:
        raise errors.InvalidArgument(f"quantity must be above 0 and below {QUANTITY_MAX:,} with at most "
                                     f"{QUANTITY_DECIMALS} decimals, got {text!r}", field="quantity")
    if facility.per == "use" and units % 10**QUANTITY_DECIMALS:
        raise errors.InvalidArgument(f"{facility.name} is priced per use: whole uses, got {text!r}",
                                     field="quantity")
    return units


def use_amount_minor(facility: Facility, quantity_milli: int, site: Site) -> int:
    """price x quantity, rounded once (exact integers: 10^-6 price units x 10^-3 quantity units)."""
    price_u = exact_units(facility.price, PRICE_DECIMALS)
    assert price_u is not None  # the usage file holds prices to 10^-6
    scale = 10 ** (PRICE_DECIMALS + QUANTITY_DECIMALS - site.minor_unit_exponent)
    return round_div(price_u * quantity_milli, scale, site.rounding)


def use_movement(settings: UsageSettings, use: Use) -> tuple[Movement, int]:
    """The use as a `use` movement (its key prefixed, its payload the whole use), and its amount."""
    if use.source not in SOURCES:
        raise errors.InvalidArgument(f"source must be one of {', '.join(SOURCES)}, got {use.source!r}",
                                     field="source")
    facility = facility_of(settings, use)
    amount = use_amount_minor(facility, quantity_units(facility, use.quantity), settings.site)
    if amount <= 0:
        raise errors.InvalidArgument(f"a use of {use.quantity} {facility.per} of {facility.name} costs "
                                     "nothing at this price: nothing to debit", field="quantity")
    reason = f"{facility.name} {Decimal(use.quantity).normalize()} {facility.per}"
    return Movement("use", f"use:{use.key}", use.account_id, facility.wallet, amount,
                    reason=reason, reference=f"{use.source}:{use.reference}"), amount
