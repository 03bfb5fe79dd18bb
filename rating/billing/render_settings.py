"""What a site's rendered documents say about the site: the `[document]`
table of billing.toml, and amounts in the site's currency format.

    [document]
    name = "Green Meadows Co-operative Housing Society Ltd."   # default: the site's name
    address = ["Survey No. 42, Baner Road", "Pune 411045"]     # lines under the name
    registration = "PNA/HSG/TC/12345/2015"                     # shown under the address
    locale = "en_IN"            # Babel locale of amounts and dates (default: en_IN for INR, else en)
    payment_reference = "{account_id}/{number}"   # placeholders: account_id, number, cycle
    payment_note = "UPI greenmeadows@examplebank, or NEFT to A/c 0123456789 (IFSC EXMP0000123)"

Amounts are formatted by Babel (`format_currency`) from integer minor units
through Decimal, never a float: en_IN groups ₹1,00,000.00.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, format_decimal

from rating.errors import ConfigError

_KEYS = {"name", "address", "registration", "locale", "payment_reference", "payment_note"}
REFERENCE_FIELDS = {"account_id", "number", "cycle"}
DEFAULT_REFERENCE = "{account_id}/{number}"
TEXT_CHARS_MAX = 200
ADDRESS_LINES_MAX = 6


@dataclass(frozen=True)
class DocumentSettings:
    name: str
    currency: str
    exponent: int  # the currency's minor unit exponent (site.minor_unit_exponent)
    address: tuple[str, ...] = ()
    registration: str = ""
    locale: str = "en"
    payment_reference: str = DEFAULT_REFERENCE
    payment_note: str = ""

    def money(self, minor: int) -> str:
        """Minor units in the site's currency format: 10000000 -> '₹1,00,000.00' (en_IN)."""
        return _currency(minor, self.exponent, self.currency, self.locale)

    def number(self, value: Decimal | int | None) -> str:
        """A quantity or rate in the locale's grouping, its digits as given ("" for none)."""
        if value is None:
            return ""
        return format_decimal(value, locale=self.locale, decimal_quantization=False)

    def reference(self, *, account_id: str, number: str, cycle: str) -> str:
        """The payment reference a payer quotes (bank transfer, UPI note)."""
        return self.payment_reference.format(account_id=account_id, number=number, cycle=cycle)


def _currency(minor: int, exponent: int, currency: str, locale: str) -> str:
    # the amount's own digits (the site's minor unit), not the currency's usual ones
    return format_currency(Decimal(minor).scaleb(-exponent), currency, locale=locale, currency_digits=False,
                           decimal_quantization=False)


def document_settings(data: object, *, site_name: str, currency: str, exponent: int,
                      where: str) -> DocumentSettings:
    """The `[document]` table (None: defaults), every value checked; errors name the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"must be a table, got {data!r}", where=where)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}; known: {', '.join(sorted(_KEYS))}", where=where)
    address = data.get("address", [])
    if not isinstance(address, list) or len(address) > ADDRESS_LINES_MAX:
        raise ConfigError(f"must be an array of at most {ADDRESS_LINES_MAX} lines", where=f"{where}.address")
    locale = _text(data, "locale", where, "en_IN" if currency == "INR" else "en")
    try:
        Locale.parse(locale)
    except (UnknownLocaleError, ValueError) as exc:
        raise ConfigError(f"unknown locale {locale!r} ({exc})", where=f"{where}.locale") from None
    reference = _text(data, "payment_reference", where, DEFAULT_REFERENCE)
    _check_reference(reference, f"{where}.payment_reference")
    return DocumentSettings(
        name=_text(data, "name", where, site_name), currency=currency, exponent=exponent,
        address=tuple(_line(line, f"{where}.address[{i}]") for i, line in enumerate(address)),
        registration=_text(data, "registration", where, ""), locale=locale, payment_reference=reference,
        payment_note=_text(data, "payment_note", where, ""))


def _check_reference(template: str, where: str) -> None:
    try:
        fields = {name for _, name, spec, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ConfigError(f"not a reference template: {exc}", where=where) from None
    if not fields <= REFERENCE_FIELDS:
        raise ConfigError(f"unknown field(s) {sorted(fields - REFERENCE_FIELDS)}; known: "
                          f"{', '.join(sorted(REFERENCE_FIELDS))}", where=where)


def _text(data: dict, key: str, where: str, default: str) -> str:
    value = data.get(key, default)
    return _line(value, f"{where}.{key}") if value != default else value


def _line(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > TEXT_CHARS_MAX:
        raise ConfigError(f"must be a non-empty string of at most {TEXT_CHARS_MAX} characters, "
                          f"got {value!r}", where=where)
    return value
