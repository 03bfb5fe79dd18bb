"""Integer money for the bill's fast path: exact products, one rounding per line,
and the text a bill line's basis shows."""

from __future__ import annotations

from rating.fixedpoint import round_div

__all__ = ["major", "round_div"]


def major(minor: int, exponent: int) -> str:
    """Minor units as a plain decimal in major units: 123456 -> '1234.56'."""
    if exponent == 0:
        return str(minor)
    whole, part = divmod(abs(minor), 10**exponent)
    return f"{'-' if minor < 0 else ''}{whole}.{part:0{exponent}d}"
