"""Amounts from bank files: decimal text to integer minor units, exactly.

A bank file carries amounts as decimal text in the account's currency. They
become integer counts of the currency's minor unit (paisa, cent) through
Decimal, never a float, and an amount finer than the minor unit is refused:
rounding a bank's figure would make the books disagree with the bank.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from rating.payments.errors import StatementError

# ISO 4217 currencies whose minor unit is not 1/100; every other code has 2.
MINOR_UNIT_EXPONENTS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
         "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
# ISO 20022 amounts have at most 18 digits, MT940 15: far inside int64 minor units
AMOUNT_DIGITS_MAX = 18
_EXACT = Context(prec=2 * AMOUNT_DIGITS_MAX + 4, traps=[InvalidOperation])  # never rounds these

_CURRENCY = re.compile(r"[A-Z]{3}")
_PLAIN_DECIMAL = re.compile(rf"[+-]?\d{{1,{AMOUNT_DIGITS_MAX}}}(\.\d{{0,{AMOUNT_DIGITS_MAX}}})?")


def minor_unit_exponent(currency: str, **where: Any) -> int:
    """Decimal places of `currency`'s minor unit (INR 2, JPY 0, KWD 3)."""
    if not _CURRENCY.fullmatch(currency):
        raise StatementError(f"currency {currency!r} is not a three-letter ISO 4217 code", **where)
    return MINOR_UNIT_EXPONENTS.get(currency, 2)


def to_minor(text: str, currency: str, **where: Any) -> int:
    """`text` (plain decimal with '.', optional sign) as integer minor units of `currency`.

    `where` names the place for an error (file=, statement=, entry=, field=).
    Trailing zeros past the minor unit are exact and accepted ("12.500" INR);
    a non-zero digit there is refused, never rounded.
    """
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise StatementError(f"amount {text!r} is not a decimal number of at most "
                             f"{AMOUNT_DIGITS_MAX} digits", **where)
    exponent = minor_unit_exponent(currency, **where)
    minor = Decimal(text).scaleb(exponent, _EXACT)
    if minor != minor.to_integral_value():
        raise StatementError(f"amount {text} has more decimals than {currency}'s minor unit "
                             f"({exponent} places)", **where)
    return int(minor)
