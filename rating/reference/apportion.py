"""The slow, obviously correct definition of an exact split (Fraction and Decimal).

`rating.apportion.split` (the Cython kernel) must give the same shares as
`split_groups_reference`, which the property tests check. The rule, in
words (docs/apportionment.md, "Exact shares"):

1. Each member's exact share is `total × weight / Σ weights`, a fraction.
2. Each member first gets that share rounded down to the resolution
   (a whole minor unit of money, or a whole quantity unit).
3. The units still missing to reach the total, fewer than the members, go
   one each to the members with the largest fractional remainder; among
   equal remainders the larger weight goes first, then the lower key
   (unit id). Every member therefore ends within one unit of its exact
   share, the shares sum exactly to the total, and the input order of the
   members does not matter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from math import floor, lcm


def split_reference(total: int, weights: Sequence[int], keys: Sequence) -> list[int]:
    """Split the integer `total >= 0` over members with integer `weights >= 0`
    (not all zero) and unique `keys`; returns integer shares in input order."""
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("total and weights must be >= 0")
    if len(set(keys)) != len(keys):
        raise ValueError("keys must be unique within a group")
    weight_sum = sum(weights)
    if weight_sum == 0:
        if total:
            raise ValueError("cannot split a non-zero total over zero weights")
        return [0] * len(weights)
    exact = [Fraction(total * w, weight_sum) for w in weights]
    shares = [floor(q) for q in exact]
    leftover = total - sum(shares)
    assert 0 <= leftover < max(len(weights), 1)
    order = sorted(
        range(len(weights)),
        key=lambda i: (-(exact[i] - shares[i]), -weights[i], keys[i]),
    )
    for i in order[:leftover]:
        shares[i] += 1
    assert sum(shares) == total
    return shares


def split_mixed_reference(total: int, area_percent: Decimal, areas: Sequence[int],
                          consumptions: Sequence[int], keys: Sequence) -> list[int]:
    """Method mixed: `total` is first cut in two, the area part
    total × area_percent / 100 and the rest, by `split_reference` over the two
    parts (the area part first on a tie); the area part is split by `areas`,
    the rest by `consumptions`, and each member gets the sum of its two shares."""
    if not Decimal(0) <= area_percent <= 100:
        raise ValueError("area_percent must be in 0..100")
    percent = Fraction(area_percent)
    scale = percent.denominator
    area_part, rest = split_reference(total, [percent.numerator, int((100 - percent) * scale)], [0, 1])
    by_area = split_reference(area_part, areas, keys)
    by_consumption = split_reference(rest, consumptions, keys)
    return [a + c for a, c in zip(by_area, by_consumption, strict=True)]


def split_groups_reference(
    totals: Sequence[int], offsets: Sequence[int], weights: Sequence[int], keys: Sequence
) -> list[int]:
    """`split_reference` of each group g, whose members are offsets[g]..offsets[g+1]-1."""
    shares: list[int] = []
    for g, total in enumerate(totals):
        lo, hi = offsets[g], offsets[g + 1]
        shares += split_reference(int(total), [int(w) for w in weights[lo:hi]], list(keys[lo:hi]))
    return shares


def split_decimal_reference(
    total: Decimal, weights: Mapping[str, Decimal], resolution: Decimal
) -> dict[str, Decimal]:
    """Split a Decimal `total` (a multiple of `resolution`, e.g. Decimal('0.01'))
    over units by Decimal weights; ties go to the lower unit id (string order).

    >>> split_decimal_reference(Decimal("100.00"), {"A": 1, "B": 1, "C": 1}, Decimal("0.01"))
    {'A': Decimal('33.34'), 'B': Decimal('33.33'), 'C': Decimal('33.33')}
    """
    units = Fraction(total) / Fraction(resolution)
    if units.denominator != 1:
        raise ValueError(f"{total} is not a multiple of {resolution}")
    ids = sorted(weights)
    # Scaling every weight by the same factor changes no share: make them integers.
    fractions = [Fraction(weights[i]) for i in ids]
    scale = lcm(*(f.denominator for f in fractions)) if fractions else 1
    sign = -1 if units < 0 else 1
    integer_shares = split_reference(
        int(abs(units)), [int(f * scale) for f in fractions], ids
    )
    return {i: sign * s * resolution for i, s in zip(ids, integer_shares, strict=True)}

