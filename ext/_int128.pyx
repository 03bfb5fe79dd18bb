# The 128-bit helpers of _types.pxd as Python functions, so that tests can
# hold them to Python's integers at the edges of int64. The kernels call the
# C helpers directly; nothing else uses this module.
from libc.stdint cimport int32_t, int64_t

from _types cimport mul_divmod as c_mul_divmod
from _types cimport product_greater as c_product_greater
from _types cimport wide_delta as c_wide_delta


def mul_divmod(int64_t a, int64_t b, int64_t c):
    """divmod(a * b, c) of the exact product; None where the quotient leaves
    int64 or c is 0."""
    cdef int64_t q = 0, r = 0
    if c_mul_divmod(a, b, c, &q, &r):
        return None
    return q, r


def product_greater(int64_t a, int64_t b, int64_t c, int64_t d):
    """a * b > c * d, exactly."""
    return bool(c_product_greater(a, b, c, d))


def wide_delta(int64_t a, int64_t b, int32_t m):
    """(a - b) * m exactly, from its two 128-bit words."""
    cdef int64_t words[2]
    c_wide_delta(a, b, m, words)
    cdef object low = words[0], high = words[1]  # Python integers from here on
    return (high << 64) | (low & 0xFFFFFFFFFFFFFFFF)
