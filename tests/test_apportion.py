"""The Cython split (through rating.apportion.split) against the reference."""

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.apportion import split, split_amount
from rating.apportion_reference import split_groups_reference
from rating.errors import AmountOverflowError, InputError


@st.composite
def many_groups(draw, max_groups=8, max_members=40, max_total=10**12, max_weight=10**6):
    """Several groups with unique keys per group, as `split` takes them."""
    sizes = draw(st.lists(st.integers(0, max_members), min_size=0, max_size=max_groups))
    weight = st.integers(0, max_weight) | st.sampled_from([0, 1, max_weight])
    offsets, totals, weights, keys = [0], [], [], []
    for size in sizes:
        w = draw(st.lists(weight, min_size=size, max_size=size))
        if size and sum(w) == 0 and draw(st.booleans()):
            w[0] = 1
        totals.append(draw(st.integers(0, max_total)) if sum(w) else 0)
        keys += draw(st.permutations(range(size * 3)))[:size]
        weights += w
        offsets.append(offsets[-1] + size)
    return totals, offsets, weights, keys


def as_arrays(group):
    return [np.array(x, dtype=np.int64) for x in group]


@given(many_groups())
def test_kernel_equals_reference(group):
    totals, offsets, weights, keys = group
    assert split(*as_arrays(group)).tolist() == split_groups_reference(totals, offsets, weights, keys)


@given(many_groups(max_total=2**63 - 1, max_weight=2**62 // 40))
def test_kernel_equals_reference_with_128_bit_products(group):
    totals, offsets, weights, keys = group
    assert split(*as_arrays(group)).tolist() == split_groups_reference(totals, offsets, weights, keys)


@given(many_groups(max_groups=2, max_members=400, max_weight=3))
def test_kernel_equals_reference_on_large_groups_with_many_ties(group):
    totals, offsets, weights, keys = group
    assert split(*as_arrays(group)).tolist() == split_groups_reference(totals, offsets, weights, keys)


@given(many_groups())
def test_shares_sum_to_totals_each_within_one_unit(group):
    totals, offsets, weights, keys = group
    shares = split(*as_arrays(group))
    for g, total in enumerate(totals):
        lo, hi = offsets[g], offsets[g + 1]
        assert shares[lo:hi].sum() == total
        w_sum = sum(weights[lo:hi])
        if w_sum == 0:
            assert not shares[lo:hi].any()
            continue
        for share, w in zip(shares[lo:hi], weights[lo:hi], strict=True):
            assert abs(int(share) - Fraction(total * w, w_sum)) < 1


@given(many_groups(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_row_order(group, random):
    totals, offsets, weights, keys = group
    shares = split(*as_arrays(group))
    order = []
    for g in random.sample(range(len(totals)), len(totals)):
        members = list(range(offsets[g], offsets[g + 1]))
        random.shuffle(members)
        order.append((g, members))
    new_offsets = [0]
    for _, members in order:
        new_offsets.append(new_offsets[-1] + len(members))
    rows = [i for _, members in order for i in members]
    reshuffled = split(
        [totals[g] for g, _ in order], new_offsets, [weights[i] for i in rows], [keys[i] for i in rows]
    )
    assert dict(zip(rows, reshuffled.tolist(), strict=True)) == dict(enumerate(shares.tolist()))


@given(many_groups())
def test_twice_the_weight_never_gets_less(group):
    totals, offsets, weights, keys = group
    shares = split(*as_arrays(group))
    for g in range(len(totals)):
        w = np.array(weights[offsets[g] : offsets[g + 1]])
        s = shares[offsets[g] : offsets[g + 1]]
        larger = w[:, None] > w[None, :]
        assert (s[:, None] >= s[None, :])[larger].all()


def test_hundred_over_three_equal_units():
    assert split([10000], [0, 3], [1, 1, 1], [0, 1, 2]).tolist() == [3334, 3333, 3333]
    assert split_amount("100.00", {"A-103": 1, "A-101": 1, "A-102": 1}) == {
        "A-101": Decimal("33.34"),
        "A-102": Decimal("33.33"),
        "A-103": Decimal("33.33"),
    }


def test_one_large_group_uses_selection_correctly():
    rng = np.random.default_rng(7)
    n = 20_000
    weights = rng.integers(0, 5, n)
    keys = rng.permutation(n)
    for total in (0, 1, n // 2, n - 1, 10**9 + 7):
        got = split([total], [0, n], weights, keys).tolist()
        assert got == split_groups_reference([total], [0, n], weights.tolist(), keys.tolist())


def test_empty_input_and_empty_groups():
    assert split([], [0], [], []).tolist() == []
    assert split([0, 5, 0], [0, 0, 2, 2], [1, 1], [0, 1]).tolist() == [3, 2]


@pytest.mark.parametrize(
    ("args", "error", "words"),
    [
        (([1.5], [0, 1], [1], [0]), InputError, "integers"),
        (([5], [0, 2], [1], [0]), InputError, "offsets"),
        (([5], [0, 1, 1], [1], [0]), InputError, "offsets"),
        (([5], [0, 1], [1], [0, 1]), InputError, "keys"),
        (([-5], [0, 1], [1], [0]), InputError, ">= 0"),
        (([5], [0, 1], [-1], [0]), InputError, ">= 0"),
        (([5], [0, 2], [0, 0], [0, 1]), InputError, "no weight"),
        (([5], [0, 2], [1, 1], [3, 3]), InputError, "unique"),
        (([5], [0, 2], [2**62, 2**62], [0, 1]), AmountOverflowError, "sum"),
        (([5], [0, 1], np.array([2**64 - 1], dtype=np.uint64), [0]), AmountOverflowError, "int64"),
        (([[5]], [0, 1], [1], [0]), InputError, "one-dimensional"),
    ],
)
def test_split_refuses_bad_input(args, error, words):
    with pytest.raises(error, match=words):
        split(*args)


def test_split_amount_refuses_finer_total_and_negative_weights():
    with pytest.raises(InputError, match="decimals"):
        split_amount("1.005", {"A": 1})
    with pytest.raises(InputError, match=">= 0"):
        split_amount("1.00", {"A": -1, "B": 2})
    assert split_amount("0.05", {"A": "0.5", "B": "0.25"}) == {"A": Decimal("0.03"), "B": Decimal("0.02")}
