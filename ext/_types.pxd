# Shared C-level types and helpers of the kernels: the one place they are declared.
#
# Every 128-bit product and quotient is computed inside the C helpers below,
# never in Cython: Cython has no 128-bit type (it would see `long long`), so
# a division written in Cython would depend on the `cdivision` directive and
# could be routed through a 64-bit helper. The helpers round like Python's //.
from libc.stdint cimport int32_t, int64_t, uint8_t

cdef extern from *:
    """
    #ifndef RATING_DEBUG
    #define RATING_DEBUG 0
    #endif
    static inline int rating_mul_overflow(int64_t a, int64_t b, int64_t *out) {
        return __builtin_mul_overflow(a, b, out);
    }
    static inline int rating_add_overflow(int64_t a, int64_t b, int64_t *out) {
        return __builtin_add_overflow(a, b, out);
    }
    static inline int rating_sub_overflow(int64_t a, int64_t b, int64_t *out) {
        return __builtin_sub_overflow(a, b, out);
    }
    /* q = floor(a * b / c) and r = a * b - q * c (r has the sign of c), of
       the exact product, as Python's divmod. Returns 1 (q, r untouched) when
       c == 0 or q leaves int64. */
    static inline int rating_mul_divmod(int64_t a, int64_t b, int64_t c, int64_t *q, int64_t *r) {
        int64_t p64;
        __int128 p, quot, rem;
        if (c == 0) return 1;
        if (!__builtin_mul_overflow(a, b, &p64) && !(p64 == INT64_MIN && c == -1)) {
            int64_t q64 = p64 / c, r64 = p64 % c;  /* the fast path: no 128-bit division */
            if (r64 != 0 && ((r64 < 0) != (c < 0))) { q64 -= 1; r64 += c; }
            *q = q64; *r = r64;
            return 0;
        }
        p = (__int128)a * b;  /* |p| <= 2^126: no 128-bit overflow */
        quot = p / c;
        rem = p - quot * c;
        if (rem != 0 && ((rem < 0) != (c < 0))) { quot -= 1; rem += c; }
        if (quot < INT64_MIN || quot > INT64_MAX) return 1;
        *q = (int64_t)quot; *r = (int64_t)rem;  /* |rem| < |c| */
        return 0;
    }
    /* (a - b) * m exactly, as 128-bit two's complement words {low, high}
       (decimal128's layout): |a - b| < 2^64 and |m| < 2^31, so |result| < 2^95. */
    static inline void rating_wide_delta(int64_t a, int64_t b, int32_t m, int64_t *words) {
        __int128 p = ((__int128)a - b) * m;
        words[0] = (int64_t)(uint64_t)p;
        words[1] = (int64_t)(p >> 64);
    }
    /* a * b > c * d, exactly. */
    static inline int rating_product_greater(int64_t a, int64_t b, int64_t c, int64_t d) {
        return (__int128)a * b > (__int128)c * d;
    }
    static inline void rating_prefetch_write(const void *p) {
        __builtin_prefetch(p, 1, 3);
    }
    """
    # True in the RATING_DEBUG=1 build: the loops check every index they use
    # against its array. A compile-time 0 otherwise, so the checks vanish.
    const bint DEBUG_CHECKS "RATING_DEBUG"
    bint mul_overflow "rating_mul_overflow"(int64_t a, int64_t b, int64_t *out) noexcept nogil
    bint add_overflow "rating_add_overflow"(int64_t a, int64_t b, int64_t *out) noexcept nogil
    bint sub_overflow "rating_sub_overflow"(int64_t a, int64_t b, int64_t *out) noexcept nogil
    bint mul_divmod "rating_mul_divmod"(int64_t a, int64_t b, int64_t c, int64_t *q,
                                        int64_t *r) noexcept nogil
    bint product_greater "rating_product_greater"(int64_t a, int64_t b, int64_t c,
                                                  int64_t d) noexcept nogil
    void wide_delta "rating_wide_delta"(int64_t a, int64_t b, int32_t m, int64_t *words) noexcept nogil
    void prefetch_write "rating_prefetch_write"(const void *p) noexcept nogil

# Per-meter record of the consumption kernel: static settings and running
# state in one 64-byte line, because the arrival-order loop touches a
# different meter on almost every reading.
ctypedef struct MeterState:
    int64_t last_ts          # us since the epoch of the last accepted reading
    int64_t last_value       # its value, quantity units
    int64_t rollover_qty     # 10^digits in quantity units; 0: no rollover
    int64_t max_rate         # quantity units per hour; -1: no spike check
    int64_t bucket_base      # first bucket of the meter's block
    int64_t interval_us      # interval meters: length of one interval
    int32_t multiplier
    int32_t cursor           # index into bounds of the segment last used
    int32_t timeline_end     # index of the meter timeline's last bound
    uint8_t has_last
    uint8_t is_interval
