"""The largest-remainder split of many groups as careful vectorised numpy,
for comparison with the apportionment kernel (same rule and tie-break:
larger remainder, then larger weight, then lower key; see
rating/reference/apportion.py).

Floor shares and remainders with one `divmod`, the units still missing per
group from `reduceat`, then one `lexsort` ranks the members of every group
at once and the first `leftover` of each get one unit more. Exact int64 as
long as total x weight fits int64 (the kernel goes to 128 bits); checked.
"""

from __future__ import annotations

import numpy as np

INT64_MAX = np.iinfo(np.int64).max


def split_numpy(totals: np.ndarray, offsets: np.ndarray, weights: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Shares of every member; groups must be non-empty with weight sums > 0."""
    starts = offsets[:-1]
    sizes = np.diff(offsets)
    group = np.repeat(np.arange(len(totals)), sizes)
    if int(totals.max(initial=0)) * int(weights.max(initial=0)) > INT64_MAX:
        raise OverflowError("total x weight exceeds int64; the numpy peer has no 128-bit path")
    weight_sums = np.add.reduceat(weights, starts)
    shares, remainders = np.divmod(totals[group] * weights, weight_sums[group])
    leftover = totals - np.add.reduceat(shares, starts)
    order = np.lexsort((keys, -weights, -remainders, group))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order)) - starts[group[order]]
    shares += rank < leftover[group]
    return shares
