from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.errors import AmountOverflowError
from rating.fixedpoint import checked_mul, decimal_array, decimal_units, round_div, round_div_array

RULES = {"half_even": ROUND_HALF_EVEN, "half_up": ROUND_HALF_UP}
int64s = st.integers(-(2**63) + 1, 2**63 - 1)


@given(st.integers(-(10**20), 10**20), st.integers(1, 10**6), st.sampled_from(sorted(RULES)))
def test_round_div_equals_decimal_quantize(numerator, denominator, rule):
    # 20 + 6 digits fit Decimal's default 28-digit context, so the quotient is exact enough
    quotient = Decimal(numerator) / Decimal(denominator)
    expected = quotient.quantize(Decimal(1), rounding=RULES[rule])
    assert round_div(numerator, denominator, rule) == int(expected)


@given(st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=50), st.integers(1, 10**9),
       st.sampled_from(sorted(RULES)))
def test_round_div_array_equals_round_div(numerators, denominator, rule):
    got = round_div_array(np.array(numerators, dtype=np.int64), denominator, rule)
    assert got.tolist() == [round_div(n, denominator, rule) for n in numerators]
    # the same as a column matrix (pricing passes 2-D arrays)
    matrix = np.array(numerators, dtype=np.int64).reshape(-1, 1)
    assert round_div_array(matrix, denominator, rule).ravel().tolist() == got.tolist()


def test_checked_mul_raises_instead_of_wrapping():
    with pytest.raises(AmountOverflowError):
        checked_mul(np.array([2**62]), 4, what="amount")
    assert checked_mul(np.array([-(2**40)]), 2**20, what="amount").tolist() == [-(2**60)]


@given(st.lists(st.one_of(st.none(), int64s), max_size=40), st.integers(0, 9))
def test_decimal_array_round_trips_int64_units(values, scale):
    mask = np.array([v is None for v in values], dtype=bool)
    units = np.array([0 if v is None else v for v in values], dtype=np.int64)
    array = decimal_array(units, scale, mask)
    assert array.to_pylist() == [None if v is None else Decimal(v).scaleb(-scale) for v in values]
    back, back_mask = decimal_units(array, scale)
    assert back[~mask].tolist() == units[~mask].tolist()
    assert back_mask.tolist() == mask.tolist()


def test_decimal_units_rounds_a_finer_scale_and_refuses_int64_overflow():
    finer = pa.array([Decimal("1.2345"), Decimal("-1.0005"), Decimal("2.0015")], pa.decimal128(10, 4))
    assert decimal_units(finer, 3)[0].tolist() == [1234, -1000, 2002]
    huge = pa.array([Decimal(2**63)], pa.decimal128(38, 0))
    with pytest.raises(AmountOverflowError):
        decimal_units(huge, 0)
