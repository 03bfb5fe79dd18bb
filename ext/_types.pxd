# Shared C-level types of the kernels: the one place they are declared.
from libc.stdint cimport int32_t, int64_t, uint8_t

cdef extern from *:
    """
    typedef __int128 rating_int128;
    static inline int rating_mul_overflow(int64_t a, int64_t b, int64_t *out) {
        return __builtin_mul_overflow(a, b, out);
    }
    static inline int rating_add_overflow(int64_t a, int64_t b, int64_t *out) {
        return __builtin_add_overflow(a, b, out);
    }
    static inline void rating_prefetch_write(const void *p) {
        __builtin_prefetch(p, 1, 3);
    }
    """
    ctypedef long long int128 "rating_int128"
    bint mul_overflow "rating_mul_overflow"(int64_t a, int64_t b, int64_t *out) noexcept nogil
    bint add_overflow "rating_add_overflow"(int64_t a, int64_t b, int64_t *out) noexcept nogil
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
