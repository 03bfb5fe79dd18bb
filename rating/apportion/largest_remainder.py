"""The exact largest-remainder split: many groups at once through the Cython kernel
behind a checking front (`split`), or one Decimal total (`split_amount`)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from math import lcm

import numpy as np

from rating._ext._apportion import split_largest_remainder
from rating.errors import AmountOverflowError, InputError

INT64_MAX = np.iinfo(np.int64).max
# A group's weights must sum below this (checked in float64 first, which
# cannot misjudge a sum this far from the int64 limit, then exactly).
WEIGHT_SUM_MAX = 2**62


def _int64_vector(values, name: str) -> np.ndarray:
    """A contiguous 1-D int64 array, refusing floats and out-of-range integers."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got {array.ndim} dimensions")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise InputError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.dtype == np.uint64 and int(array.max()) > INT64_MAX:
        raise AmountOverflowError(f"{name} exceeds the int64 range")
    return np.ascontiguousarray(array, dtype=np.int64)


def group_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Σ values over each group (exact while each group's sum fits int64:
    wrapping in the running sum cancels in the difference)."""
    running = np.concatenate((np.zeros(1, values.dtype), np.cumsum(values)))
    return running[offsets[1:]] - running[offsets[:-1]]


def _float_group_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Σ values of each non-empty group in float64, group by group (a bound:
    relative error below len × 2^-53, so no cross-group running total)."""
    starts = offsets[:-1][np.diff(offsets) > 0]
    if len(starts) == 0:
        return np.zeros(0)
    return np.add.reduceat(values.astype(np.float64), starts)


def _keys_unique(keys: np.ndarray, offsets: np.ndarray) -> bool:
    """Whether no key repeats within a group: O(n) when keys already rise
    within every group (as `prepare` lays them out), a sort otherwise."""
    if len(keys) < 2:
        return True
    same_group = np.ones(len(keys), dtype=bool)
    starts = offsets[1:-1]
    same_group[starts[starts < len(keys)]] = False  # members i-1 and i in different groups
    same_group = same_group[1:]
    if (np.diff(keys) > 0)[same_group].all():
        return True
    group_of = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    order = np.lexsort((keys, group_of))
    return not ((np.diff(group_of[order]) == 0) & (np.diff(keys[order]) == 0)).any()


def split(totals, offsets, weights, keys) -> np.ndarray:
    """Split each group's integer total over its members in proportion to
    their integer weights, exactly, by the largest-remainder method.

    Group g owns members `offsets[g]` to `offsets[g+1] - 1` of `weights` and
    `keys`. Totals and weights are >= 0 and integers (minor units of money,
    or quantity units); a group whose weights are all zero must have a zero
    total. Keys (e.g. the rank of each unit id) must be unique within a
    group: the lower key wins a tie of equal remainder and equal weight.
    Returns the int64 shares; each group's shares sum to its total and each
    share is within one unit of `total × weight / Σ weights`.
    """
    totals = _int64_vector(totals, "totals")
    offsets = _int64_vector(offsets, "offsets")
    weights = _int64_vector(weights, "weights")
    keys = _int64_vector(keys, "keys")
    n = len(weights)
    if len(offsets) != len(totals) + 1:
        raise InputError(f"offsets has {len(offsets)} entries, expected len(totals) + 1 = {len(totals) + 1}")
    if offsets[0] != 0 or offsets[-1] != n or (np.diff(offsets) < 0).any():
        raise InputError(f"offsets must rise from 0 to len(weights) = {n}")
    if len(keys) != n:
        raise InputError(f"keys has {len(keys)} entries, weights {n}")
    if (totals < 0).any():
        raise InputError(f"totals must be >= 0; group {int(np.argmax(totals < 0))} is negative")
    if (weights < 0).any():
        raise InputError(f"weights must be >= 0; member {int(np.argmax(weights < 0))} is negative")
    if _float_group_sums(weights, offsets).max(initial=0) > WEIGHT_SUM_MAX:
        raise AmountOverflowError(f"a group's weights sum beyond {WEIGHT_SUM_MAX}")
    weight_sums = group_sums(weights, offsets)
    stranded = (weight_sums == 0) & (totals != 0)
    if stranded.any():
        raise InputError(
            f"group {int(np.argmax(stranded))} has a non-zero total but no weight to split it by"
        )
    if not _keys_unique(keys, offsets):
        raise InputError("keys must be unique within each group")

    shares = np.empty(n, dtype=np.int64)
    split_largest_remainder(offsets, totals, weights, keys, shares)
    # The invariant the kernel promises, checked after it as well as argued in it.
    if not np.array_equal(group_sums(shares, offsets), totals) or (shares < 0).any():
        raise AssertionError("apportionment kernel broke its invariant")
    return shares


PERCENT_UNITS = 100 * 10**6  # a percent at 10^-6, as the groups file allows


def split_two_ways(totals, offsets, first_weights, second_weights, first_percent_units, keys) -> np.ndarray:
    """`split` where each group's total is first cut in two exactly, the
    first part `first_percent_units[g] / PERCENT_UNITS` of it (largest
    remainder between the two parts, the first winning a tie), then the first
    part is split by `first_weights` and the rest by `second_weights`; a
    member's share is the sum of its two (method mixed: a fixed percent by
    area, the rest by consumption)."""
    totals = _int64_vector(totals, "totals")
    percent = _int64_vector(first_percent_units, "first_percent_units")
    if len(percent) != len(totals) or (percent < 0).any() or (percent > PERCENT_UNITS).any():
        raise InputError(f"first_percent_units must be one per group, each in 0..{PERCENT_UNITS}")
    groups = len(totals)
    parts = split(totals, np.arange(0, 2 * groups + 1, 2),
                  np.column_stack([percent, PERCENT_UNITS - percent]).ravel(), np.tile([0, 1], groups))
    first = split(parts[0::2], offsets, first_weights, keys)
    return first + split(parts[1::2], offsets, second_weights, keys)


def split_amount(
    total: Decimal | int | str, weights: Mapping[str, Decimal | int | str], *, exponent: int = 2
) -> dict[str, Decimal]:
    """Split a Decimal total at resolution 10^-exponent over named units.

    Ties go to the lower unit id. A negative total (a credit) is split like a
    positive one, with the sign flipped.

    >>> split_amount("100.00", {"A-101": 1, "A-102": 1, "A-103": 1})
    {'A-101': Decimal('33.34'), 'A-102': Decimal('33.33'), 'A-103': Decimal('33.33')}
    """
    resolution = Decimal(1).scaleb(-exponent)
    units = Fraction(Decimal(str(total))) * 10**exponent
    if units.denominator != 1:
        raise InputError(f"total {total} has more than {exponent} decimals")
    ids = sorted(weights)
    fractions = [Fraction(Decimal(str(weights[i]))) for i in ids]
    if any(f < 0 for f in fractions):
        raise InputError("weights must be >= 0")
    scale = lcm(*(f.denominator for f in fractions)) if fractions else 1
    integer_weights = [int(f * scale) for f in fractions]
    if sum(integer_weights) > WEIGHT_SUM_MAX:
        raise AmountOverflowError("weights too large or too finely divided to split exactly")
    if abs(units) > INT64_MAX:
        raise AmountOverflowError(f"total {total} exceeds the int64 fixed-point range")
    sign = -1 if units < 0 else 1
    shares = split([abs(int(units))], [0, len(ids)], integer_weights, np.arange(len(ids)))
    return {i: (sign * int(s) * resolution) for i, s in zip(ids, shares, strict=True)}


