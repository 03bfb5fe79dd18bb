"""Exact integer kernels: conversions, sums and rounded products that never wrap int64."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from rating.errors import AmountOverflowError, TariffError
from rating.fixedpoint import INT64_MAX, round_div, round_div_array


def units(value: Decimal, decimals: int, where: str, resolution: str) -> int:
    """`value` as an integer count of 10^-decimals, refusing anything inexact."""
    scaled = value.scaleb(decimals)
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        raise TariffError(f"{value} is finer than {resolution}", where=where)
    if abs(scaled) > INT64_MAX:
        raise TariffError(f"{value} is beyond the int64 fixed-point range", where=where)
    return int(scaled)


def int64(values: list[int] | np.ndarray, what: str) -> np.ndarray:
    """Integers (a list, or an array of int64 or of Python integers) as int64, refusing any past it."""
    if isinstance(values, np.ndarray):
        if values.dtype != object:
            return values
        values = values.tolist()
    if values and max(abs(v) for v in values) > INT64_MAX:
        raise AmountOverflowError(f"{what} exceeds the int64 fixed-point range")
    return np.array(values, dtype=np.int64)


def sum_exact(arrays: list[np.ndarray], n: int) -> np.ndarray:
    """Elementwise sum, never wrapped: int64 when no sum can leave int64, else
    Python integers (an object array). A tax or minimum charge on a base past
    int64 may itself fit again, so such a base is kept exact, not refused."""
    bound = sum(int(np.abs(a).max(initial=0)) for a in arrays)
    dtype = np.int64 if bound <= INT64_MAX else object
    total = np.zeros(n, dtype=dtype)
    for a in arrays:
        total += a.astype(dtype)
    return total


def round_product(a: np.ndarray, b: np.ndarray | int, divisor: int, rule: str) -> np.ndarray:
    """round(a × b / divisor) elementwise, exact, as int64; `a` may hold Python integers."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b, dtype=np.int64))
    if a.dtype != object and int(np.abs(a).max(initial=0)) * int(np.abs(b).max(initial=0)) <= INT64_MAX:
        return round_div_array(a * b, divisor, rule)
    # Huge quantities at high prices: Python integers keep the product exact.
    pairs = zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)
    exact = [round_div(x * y, divisor, rule) for x, y in pairs]
    return int64(exact, "a charge").reshape(a.shape)


def round_ratio(factors: list[np.ndarray], divisor: np.ndarray, rule: str) -> np.ndarray:
    """round(product of `factors` / `divisor`) elementwise (broadcast; every
    divisor positive; `divisor` may hold Python integers), exact, as int64:
    int64 arithmetic when no product (nor twice a remainder) can leave it,
    else Python integers."""
    *factors, divisor = np.broadcast_arrays(*(np.asarray(f) for f in factors), np.asarray(divisor))
    bound = 1
    for f in factors:
        bound *= int(np.abs(f).max(initial=0))
    exact_int64 = divisor.dtype != object and int(divisor.max(initial=0)) <= INT64_MAX // 2
    if bound <= INT64_MAX and exact_int64 and all(f.dtype != object for f in factors):
        numerator = np.ones(divisor.shape, dtype=np.int64)
        for f in factors:
            numerator = numerator * f
        return round_div_array(numerator, divisor, rule)
    columns = [f.ravel().tolist() for f in factors]
    exact = [round_div(math.prod(xs), d, rule)
             for *xs, d in zip(*columns, divisor.ravel().tolist(), strict=True)]
    return int64(exact, "a charge").reshape(divisor.shape)


def largest_remainder(total: np.ndarray, weights: np.ndarray, weight_sum: np.ndarray) -> np.ndarray:
    """Split each row's `total` over its `weights` in proportion, in whole units:
    the floors, then one more unit to each of the largest remainders, ties to
    the lower column."""
    g, t = weights.shape
    divisor = np.maximum(weight_sum, 1)[:, None]  # rows without weight have nothing to split
    if int(total.max(initial=0)) * int(weights.max(initial=0)) <= INT64_MAX:
        product = total[:, None] * weights
    else:  # past int64: Python integers, exact
        product = total.astype(object)[:, None] * weights.astype(object)
    floor = (product // divisor).astype(np.int64)
    remainder = product % divisor
    short = total - floor.sum(axis=1)
    order = np.argsort(-remainder, axis=1, kind="stable")
    rank = np.empty((g, t), dtype=np.int64)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(t), (g, t)), axis=1)
    return floor + (rank < short[:, None])
