# Reading values to fixed point in one pass: float64 x 10^d rounded half to
# even, as numpy's multiply then rint (same double product, same rounding),
# with the range check fused in. The caller (rating/readings/batches.py)
# masks nulls first and names the first bad value itself.
from libc.math cimport nearbyint
from libc.stdint cimport int64_t

cdef double _TWO_POW_63 = 9223372036854775808.0


def float_to_fixed(const double[::1] data, double scale, int64_t[::1] out):
    """out[i] = rint(data[i] * scale); the position of the first value that
    is not finite or leaves int64 (out then part-written), -1 when none."""
    cdef int64_t i, n = data.shape[0], bad = -1
    cdef double scaled
    with nogil:
        for i in range(n):
            scaled = nearbyint(data[i] * scale)
            if not (scaled >= -_TWO_POW_63 and scaled < _TWO_POW_63):  # NaN fails both
                bad = i
                break
            out[i] = <int64_t>scaled
    return bad
