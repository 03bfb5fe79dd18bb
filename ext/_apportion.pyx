# Apportionment kernel: largest-remainder split of many groups in one pass.
#
# The caller (rating/apportion.py, `split`) has validated every input; this
# loop trusts them. Semantics and tie-break: docs/apportionment.md, "Exact
# shares"; the readable definition is rating/apportion_reference.py.
#
# Group g owns members offsets[g] .. offsets[g+1]-1. Its total T >= 0 is
# split in proportion to the weights w_i >= 0 (W = sum w_i > 0, W fits
# int64): member i first gets floor(T * w_i / W); the L units still missing
# (0 <= L < number of members) go one each to the members that rank first
# by (larger remainder T * w_i mod W, then larger weight, then lower key).
# Keys are unique within a group, so the order is total and the result does
# not depend on the order of the members in the input.
#
# The RATING_DEBUG=1 build (DEBUG_CHECKS) also checks that every group's
# members lie inside the arrays, and stops naming the group.
from libc.stdint cimport int64_t

from _types cimport DEBUG_CHECKS, mul_divmod

import numpy as np

# Below this many candidates a range is finished by insertion sort.
cdef int64_t SMALL_RANGE = 16


cdef inline bint ranks_before(const int64_t* rem, const int64_t* weight, const int64_t* key,
                              int64_t a, int64_t b) noexcept nogil:
    """Member a (a local position in its group) gets a leftover unit before b."""
    if rem[a] != rem[b]:
        return rem[a] > rem[b]
    if weight[a] != weight[b]:
        return weight[a] > weight[b]
    return key[a] < key[b]


cdef inline void swap(int64_t* idx, int64_t i, int64_t j) noexcept nogil:
    cdef int64_t t = idx[i]
    idx[i] = idx[j]
    idx[j] = t


cdef void insertion_sort(int64_t* idx, int64_t lo, int64_t hi, const int64_t* rem,
                         const int64_t* weight, const int64_t* key) noexcept nogil:
    cdef int64_t i, j, v
    for i in range(lo + 1, hi):
        v = idx[i]
        j = i
        while j > lo and ranks_before(rem, weight, key, v, idx[j - 1]):
            idx[j] = idx[j - 1]
            j -= 1
        idx[j] = v


cdef void sift_down(int64_t* idx, int64_t lo, int64_t root, int64_t size, const int64_t* rem,
                    const int64_t* weight, const int64_t* key) noexcept nogil:
    # Heap of the range starting at lo, "largest" = ranks last, for heapsort.
    cdef int64_t child
    while True:
        child = 2 * root + 1
        if child >= size:
            return
        if child + 1 < size and ranks_before(rem, weight, key, idx[lo + child], idx[lo + child + 1]):
            child += 1
        if not ranks_before(rem, weight, key, idx[lo + root], idx[lo + child]):
            return
        swap(idx, lo + root, lo + child)
        root = child


cdef void heap_sort(int64_t* idx, int64_t lo, int64_t hi, const int64_t* rem,
                    const int64_t* weight, const int64_t* key) noexcept nogil:
    """Sort idx[lo:hi] in rank order; the O(n log n) fallback of select_first."""
    cdef int64_t size = hi - lo
    cdef int64_t i
    i = size // 2 - 1
    while i >= 0:
        sift_down(idx, lo, i, size, rem, weight, key)
        i -= 1
    i = size - 1
    while i > 0:
        swap(idx, lo, lo + i)
        sift_down(idx, lo, 0, i, rem, weight, key)
        i -= 1


cdef void select_first(int64_t* idx, int64_t m, int64_t count, const int64_t* rem,
                       const int64_t* weight, const int64_t* key) noexcept nogil:
    """Rearrange idx[0:m] so that idx[0:count] are the `count` members that
    rank first (in any order). Quickselect with a median-of-three pivot; a
    range that does not shrink fast enough is heap-sorted instead, so the
    worst case stays O(m log m)."""
    cdef int64_t lo = 0, hi = m, mid, p, i, store, pivot
    cdef int depth = 0
    cdef int64_t n = m
    while n > 1:  # depth limit 2 log2(m)
        depth += 2
        n >>= 1
    while hi - lo > SMALL_RANGE:
        if depth == 0:
            heap_sort(idx, lo, hi, rem, weight, key)
            return
        depth -= 1
        mid = lo + (hi - lo) // 2
        # median of three to idx[hi - 1]
        if ranks_before(rem, weight, key, idx[mid], idx[lo]):
            swap(idx, mid, lo)
        if ranks_before(rem, weight, key, idx[hi - 1], idx[lo]):
            swap(idx, hi - 1, lo)
        if ranks_before(rem, weight, key, idx[mid], idx[hi - 1]):
            swap(idx, mid, hi - 1)
        pivot = idx[hi - 1]
        store = lo
        for i in range(lo, hi - 1):
            if ranks_before(rem, weight, key, idx[i], pivot):
                swap(idx, i, store)
                store += 1
        swap(idx, store, hi - 1)
        p = store  # idx[lo:p] rank before the pivot, idx[p+1:hi] after it
        if p == count:
            return
        if count < p:
            hi = p
        else:
            lo = p + 1
    insertion_sort(idx, lo, hi, rem, weight, key)


cdef int64_t split_groups(const int64_t* offsets, int64_t n_groups, const int64_t* totals,
                          const int64_t* weights, const int64_t* keys, int64_t* shares,
                          int64_t n_members, int64_t* rem, int64_t* idx,
                          int64_t scratch_size) noexcept nogil:
    """Returns -1, or (debug build) the first group whose members leave the arrays."""
    cdef int64_t g, start, m, j, t, w_sum, floor_sum, leftover, candidates
    for g in range(n_groups):
        start = offsets[g]
        m = offsets[g + 1] - start
        if DEBUG_CHECKS and not (0 <= start and 0 <= m <= scratch_size and start + m <= n_members):
            return g
        t = totals[g]
        w_sum = 0
        for j in range(m):
            w_sum += weights[start + j]
        if w_sum == 0:  # the caller never sends one with t > 0
            for j in range(m):
                shares[start + j] = 0
            continue
        floor_sum = 0
        for j in range(m):
            # floor(t * w / W) of the exact product; the quotient is <= t, so it fits
            mul_divmod(t, weights[start + j], w_sum, &shares[start + j], &rem[j])
            floor_sum += shares[start + j]
        leftover = t - floor_sum
        if leftover == 0:
            continue
        # Only members with a remainder can be chosen: sum rem = leftover * W
        # and rem < W, so more than `leftover` of them have rem > 0.
        candidates = 0
        for j in range(m):
            if rem[j] > 0:
                idx[candidates] = j
                candidates += 1
        select_first(idx, candidates, leftover, rem, weights + start, keys + start)
        for j in range(leftover):
            shares[start + idx[j]] += 1
    return -1


def split_largest_remainder(
    const int64_t[::1] offsets,
    const int64_t[::1] totals,
    const int64_t[::1] weights,
    const int64_t[::1] keys,
    int64_t[::1] shares,
):
    """Write into `shares` the largest-remainder split of every group's total.

    Trusts its inputs; call it through rating.apportion.split, which checks them.
    The debug build raises IndexError where a caller broke the contract.
    """
    cdef int64_t n_groups = totals.shape[0]
    cdef int64_t g, size, largest = 0, bad_group
    if DEBUG_CHECKS and not (offsets.shape[0] == n_groups + 1 and keys.shape[0] == weights.shape[0]
                             and shares.shape[0] == weights.shape[0]):
        raise IndexError("split_largest_remainder: array lengths do not match")
    for g in range(n_groups):
        size = offsets[g + 1] - offsets[g]
        if size > largest:
            largest = size
    cdef int64_t[::1] rem = np.empty(max(largest, 1), dtype=np.int64)
    cdef int64_t[::1] idx = np.empty(max(largest, 1), dtype=np.int64)
    if weights.shape[0] == 0:
        return
    with nogil:
        bad_group = split_groups(&offsets[0], n_groups, &totals[0], &weights[0], &keys[0], &shares[0],
                                 weights.shape[0], &rem[0], &idx[0], rem.shape[0])
    if bad_group >= 0:
        raise IndexError(f"split_largest_remainder, group {bad_group}: members outside the arrays")
