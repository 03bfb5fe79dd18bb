"""Exact fixed-point helpers: rounding division and Arrow decimal conversion.

Amounts and quantities travel as int64 counts of a unit (paisa, 0.001 kWh);
Arrow decimal128 columns are built from and read into those counts without
going through Python objects.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa

from rating.errors import AmountOverflowError

INT64_MAX = np.iinfo(np.int64).max


def round_div(numerator: int, denominator: int, rule: str) -> int:
    """numerator / denominator rounded to an integer by `rule`.

    `half_even` rounds ties to the even neighbour, `half_up` rounds ties away
    from zero. `denominator` must be positive.
    """
    quotient, remainder = divmod(numerator, denominator)  # floor division
    twice = 2 * remainder
    if twice > denominator:
        return quotient + 1
    if twice < denominator:
        return quotient
    if rule == "half_even":
        return quotient + (quotient & 1)
    return quotient + 1 if numerator > 0 else quotient  # half away from zero


def exact_units(value: Decimal, decimals: int) -> int | None:
    """A finite `value` as an integer count of 10^-decimals, or None when it
    has finer digits. Exact for any number of digits (Decimal arithmetic
    would round past its context's precision); callers bound the magnitude."""
    _, digits, exponent = value.as_tuple()
    shift = int(exponent) + decimals
    if shift < 0 and any(digits[shift:]):
        return None
    coefficient = int("".join(map(str, digits)))
    if coefficient == 0:
        return 0
    units = coefficient * 10**shift if shift >= 0 else coefficient // 10**-shift
    return -units if value.is_signed() else units


def round_div_array(numerator: np.ndarray, denominator: int | np.ndarray, rule: str) -> np.ndarray:
    """Vectorised `round_div` over int64 numerators (same results, exactly);
    the denominator (positive) may be one per numerator.

    With floor division n = q·d + r, 0 <= r < d, the result is q + 1 exactly
    when 2r > d, or 2r == d and the tie goes up (q odd for half_even, n > 0
    for half away from zero); adding that 0/1 to 2r turns both into one
    integer comparison.
    """
    quotient, remainder = np.divmod(numerator, denominator)
    # in place: fresh temporaries cost more (first touch) than the arithmetic
    remainder *= 2
    remainder += (quotient & 1) if rule == "half_even" else (numerator > 0).view(np.int8)
    quotient += remainder > denominator
    return quotient


def checked_mul(a: np.ndarray, b: np.ndarray | int, *, what: str) -> np.ndarray:
    """a * b in int64, raising instead of wrapping."""
    a = np.asarray(a, dtype=np.int64)
    # Python ints: the bound itself must not wrap
    bound = int(np.abs(a).max(initial=0)) * int(np.abs(np.asarray(b)).max(initial=0))
    if bound > INT64_MAX:
        raise AmountOverflowError(f"{what} exceeds the int64 fixed-point range")
    return a * b


def decimal_array(units: np.ndarray, scale: int, mask: np.ndarray | None = None) -> pa.Array:
    """decimal128(38, scale) array whose values are `units × 10^-scale`.

    Built from the int64 counts as 128-bit two's complement, without copying
    through Python objects. `mask` marks nulls.
    """
    units = np.ascontiguousarray(units, dtype=np.int64)
    words = np.empty((len(units), 2), dtype=np.int64)
    words[:, 0] = units
    words[:, 1] = units >> 63  # sign extension into the high word
    return decimal_array_from_words(words, scale, mask)


def decimal_array_from_words(words: np.ndarray, scale: int, mask: np.ndarray | None = None) -> pa.Array:
    """decimal128(38, scale) array of 128-bit two's complement counts of
    10^-scale, given as int64 (n, 2) words (low, high). `mask` marks nulls."""
    words = np.ascontiguousarray(words, dtype=np.int64)
    validity = None
    null_count = 0
    if mask is not None and mask.any():
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little"))
        null_count = int(mask.sum())
    return pa.Array.from_buffers(
        pa.decimal128(38, scale), len(words), [validity, pa.py_buffer(words)], null_count=null_count
    )


def decimal_units(array: pa.Array, scale: int, rule: str = "half_even") -> tuple[np.ndarray, np.ndarray]:
    """The int64 counts of 10^-scale of a decimal128 array, and its null mask.

    A finer source scale is rounded by `rule`; a value outside int64 raises.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_decimal128(array.type):
        raise TypeError(f"expected decimal128, got {array.type}")
    n = len(array)
    words = np.frombuffer(array.buffers()[1], dtype=np.int64, count=2 * (array.offset + n))
    words = words.reshape(-1, 2)[array.offset :]
    low, high = words[:, 0], words[:, 1]
    mask = array.is_null().to_numpy(zero_copy_only=False)
    fits = (high == (low >> 63)) | mask  # the 128-bit value fits in int64
    if not fits.all():
        raise AmountOverflowError(f"decimal value at position {int(np.argmin(fits))} exceeds int64")
    units = np.where(mask, 0, low)
    shift = scale - array.type.scale
    if shift > 0:
        units = checked_mul(units, 10**shift, what="decimal value")
    elif shift < 0:
        units = round_div_array(units, 10**-shift, rule)
    return units, mask
