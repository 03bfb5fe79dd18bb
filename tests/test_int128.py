"""The kernels' 128-bit helpers (ext/_types.pxd) equal Python's integers at the
edges of int64: floor division and remainder like `divmod` (negative operands
and quotients included), exact product comparisons, exact wide deltas."""

import itertools

from hypothesis import given
from hypothesis import strategies as st

from rating._ext._int128 import mul_divmod, product_greater, wide_delta

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
EDGES = [INT64_MIN, INT64_MIN + 1, -(2**32), -7, -2, -1, 0, 1, 2, 7, 2**32, INT64_MAX - 1, INT64_MAX]
int64s = st.sampled_from(EDGES) | st.integers(INT64_MIN, INT64_MAX)


def python_divmod(a: int, b: int, c: int):
    if c == 0:
        return None
    q, r = divmod(a * b, c)
    return (q, r) if INT64_MIN <= q <= INT64_MAX else None


def test_mul_divmod_floors_like_python_at_every_edge():
    for a, b, c in itertools.product(EDGES, repeat=3):
        assert mul_divmod(a, b, c) == python_divmod(a, b, c), (a, b, c)


def test_mul_divmod_rounds_negative_quotients_down():
    assert mul_divmod(-7, 1, 2) == (-4, 1)  # C would truncate to -3 (remainder -1)
    assert mul_divmod(7, 1, -2) == (-4, -1)
    assert mul_divmod(-7, 1, -2) == (3, -1)
    assert mul_divmod(INT64_MIN, 3, 2) == python_divmod(INT64_MIN, 3, 2)  # 128-bit path, odd
    assert mul_divmod(INT64_MIN, 1, -1) is None  # 2^63 does not fit
    assert mul_divmod(INT64_MAX, INT64_MAX, INT64_MAX) == (INT64_MAX, 0)


@given(int64s, int64s, int64s)
def test_mul_divmod_equals_python_divmod(a, b, c):
    assert mul_divmod(a, b, c) == python_divmod(a, b, c)


@given(int64s, int64s, int64s, int64s)
def test_product_greater_is_exact(a, b, c, d):
    assert product_greater(a, b, c, d) == (a * b > c * d)


def test_product_greater_at_the_edges():
    for a, b, c, d in itertools.product([INT64_MIN, -1, 0, 1, INT64_MAX], repeat=4):
        assert product_greater(a, b, c, d) == (a * b > c * d), (a, b, c, d)


@given(int64s, int64s, st.sampled_from([INT32_MIN, -1, 0, 1, INT32_MAX]) | st.integers(INT32_MIN, INT32_MAX))
def test_wide_delta_is_exact(a, b, m):
    assert wide_delta(a, b, m) == (a - b) * m


def test_wide_delta_at_the_edges():
    for a, b in itertools.product([INT64_MIN, -1, 0, 1, INT64_MAX], repeat=2):
        for m in (INT32_MIN, -1, 1, INT32_MAX):
            assert wide_delta(a, b, m) == (a - b) * m, (a, b, m)
