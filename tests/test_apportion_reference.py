"""The reference split states the rule; these tests state its promises."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.reference.apportion import (
    split_decimal_reference,
    split_groups_reference,
    split_reference,
)

weights_st = st.lists(st.integers(0, 10**6), min_size=1, max_size=30).filter(lambda w: sum(w) > 0)


@st.composite
def groups(draw):
    weights = draw(weights_st)
    total = draw(st.integers(0, 10**12))
    return total, weights, list(range(len(weights)))


def test_hundred_over_three_equal_units_is_33_34_33_33_33_33():
    shares = split_decimal_reference(
        Decimal("100.00"), {"A-101": 1, "A-102": 1, "A-103": 1}, Decimal("0.01")
    )
    assert shares == {"A-101": Decimal("33.34"), "A-102": Decimal("33.33"), "A-103": Decimal("33.33")}


@given(groups())
def test_shares_sum_to_total(group):
    total, weights, keys = group
    assert sum(split_reference(total, weights, keys)) == total


@given(groups())
def test_each_share_within_one_unit_of_exact(group):
    total, weights, keys = group
    for share, w in zip(split_reference(total, weights, keys), weights, strict=True):
        assert abs(share - Fraction(total * w, sum(weights))) < 1


@given(groups(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_row_order(group, random):
    total, weights, keys = group
    expected = dict(zip(keys, split_reference(total, weights, keys), strict=True))
    order = list(range(len(keys)))
    random.shuffle(order)
    shuffled = split_reference(total, [weights[i] for i in order], [keys[i] for i in order])
    assert dict(zip([keys[i] for i in order], shuffled, strict=True)) == expected


@given(groups())
def test_larger_weight_never_gets_less(group):
    total, weights, keys = group
    shares = split_reference(total, weights, keys)
    for i in range(len(weights)):
        for j in range(len(weights)):
            if weights[i] > weights[j]:  # twice the weight included
                assert shares[i] >= shares[j]


def test_ties_go_to_larger_weight_then_lower_key():
    # 1 over weights 1 and 1: remainders tie, weights tie, key 3 < 7 wins.
    assert split_reference(1, [1, 1], [7, 3]) == [0, 1]
    # 3 over 1, 2, 2, 1 (sum 6): exact 0.5, 1, 1, 0.5; both halves tie on weight.
    assert split_reference(3, [1, 2, 2, 1], [4, 1, 2, 3]) == [0, 1, 1, 1]


def test_groups_are_split_independently():
    assert split_groups_reference([10, 0, 7], [0, 3, 3, 5], [1, 2, 3, 5, 5], [0, 1, 2, 9, 3]) == [
        2, 3, 5, 3, 4,
    ]


def test_refuses_what_it_cannot_split():
    with pytest.raises(ValueError):
        split_reference(5, [0, 0], [0, 1])
    with pytest.raises(ValueError):
        split_reference(5, [1, 1], [0, 0])
    assert split_reference(0, [0, 0], [0, 1]) == [0, 0]


def test_decimal_weights_and_a_credit():
    shares = split_decimal_reference(
        Decimal("-10.00"), {"B": Decimal("0.5"), "A": Decimal("1.25")}, Decimal("0.01")
    )
    assert shares == {"A": Decimal("-7.14"), "B": Decimal("-2.86")}
    assert sum(shares.values()) == Decimal("-10.00")
