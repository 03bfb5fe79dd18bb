# Consumption kernel: readings in arrival order -> per-bucket quantities.
#
# The caller (rating/consumption.py) has validated every input; this loop
# trusts them. Semantics: docs/semantics.md, "Meters and readings" and
# "Splitting an interval over boundaries". Every sum and product is checked
# or bounded: values may span all of int64, timestamps lie within the
# timelines (which Python dates bound to years 1-9999), multipliers are
# positive int32 and rollover_qty <= 10^18.
#
# The RATING_DEBUG=1 build (DEBUG_CHECKS) also checks every index the loops
# use against its array and stops with a CHECK_* error naming the row.
from libc.stdint cimport int32_t, int64_t, uint8_t

from libc.stdint cimport INT64_MAX, INT64_MIN

from _types cimport (
    DEBUG_CHECKS,
    MeterState,
    add_overflow,
    mul_divmod,
    mul_overflow,
    prefetch_write,
    product_greater,
    sub_overflow,
    wide_delta,
)

# Anomaly codes; rating/consumption.py names them in the same order.
cdef enum:
    UNKNOWN_METER = 1
    NULL_VALUE = 2
    OUT_OF_RANGE = 3
    NEGATIVE_QUANTITY = 4
    DUPLICATE = 5
    CONFLICTING_DUPLICATE = 6
    OUT_OF_ORDER = 7
    NEGATIVE_DELTA = 8
    ROLLOVER = 9
    SPIKE = 10

# Errors that stop the batch (the caller keeps nothing of it). The CHECK_
# ones come only from the debug build, and mean a caller broke the contract.
cdef enum:
    OK = 0
    OVERFLOW_CONSUMPTION = 1
    OVERFLOW_BUCKET = 2
    CHECK_METER = 3
    CHECK_SEGMENT = 4
    CHECK_BUCKET = 5

CHECK_MESSAGES = {
    CHECK_METER: "meter index outside the state array",
    CHECK_SEGMENT: "timeline segment outside the bounds array, or a reading outside its timeline",
    CHECK_BUCKET: "bucket outside the bucket array",
}

cdef int64_t US_PER_HOUR = 3600000000
# A bucket no accepted interval reached yet. Telling "touched with zero
# consumption" from "untouched" in the bucket itself saves a second random
# write per reading; sums of consumption are never negative, so never this.
cdef int64_t UNTOUCHED = INT64_MIN
# How many readings ahead the loop prefetches the meter's state record: far
# enough to hide an L3 miss, near enough to stay in L1.
cdef int64_t PREFETCH_AHEAD = 8


cdef inline int32_t find_segment(const int64_t* bounds, int32_t cursor, int32_t end,
                                 int64_t t) noexcept nogil:
    """Index j of the segment (bounds[j], bounds[j+1]] holding t, searching
    forward from cursor: readings of a meter arrive in time order, so the
    answer is almost always cursor or cursor + 1."""
    cdef int32_t lo, hi, mid
    if t <= bounds[cursor + 1]:
        return cursor
    if cursor + 2 <= end and t <= bounds[cursor + 2]:
        return cursor + 1
    lo = cursor + 1
    hi = end - 1
    while lo < hi:  # first j with t <= bounds[j+1]
        mid = (lo + hi) >> 1
        if t <= bounds[mid + 1]:
            hi = mid
        else:
            lo = mid + 1
    return lo


cdef inline int add_to_bucket(int64_t* bucket_qty, int64_t n_buckets, int64_t b,
                              int64_t q) noexcept nogil:
    """bucket_qty[b] += q, marking it touched; OK or the error."""
    cdef int64_t total
    if DEBUG_CHECKS and not 0 <= b < n_buckets:
        return CHECK_BUCKET
    total = bucket_qty[b]
    if total == UNTOUCHED:
        total = 0
    if add_overflow(total, q, &total):
        return OVERFLOW_BUCKET
    bucket_qty[b] = total
    return OK


cdef inline int add_split(MeterState* s, int64_t* bucket_qty, int64_t n_buckets,
                          const int64_t* bounds, const int32_t* slots, int32_t j, int64_t t0,
                          int64_t t1, int64_t q) noexcept nogil:
    """Spread q over the segments that (t0, t1] overlaps, pro rata by time
    with cumulative floor rounding, so the parts sum to q exactly."""
    cdef int32_t k = j
    cdef int64_t duration = t1 - t0
    cdef int64_t cum_prev = 0, cum = 0, rem
    cdef int error
    while bounds[k] > t0:  # walk back to the segment holding the interval start
        if DEBUG_CHECKS and k == 0:
            return CHECK_SEGMENT
        k -= 1
    while k <= j:
        if k == j:
            cum = q
        else:
            # floor(q * (end - t0) / duration); never fails: 0 < end - t0 < duration
            mul_divmod(q, bounds[k + 1] - t0, duration, &cum, &rem)
        error = add_to_bucket(bucket_qty, n_buckets, s.bucket_base + slots[k], cum - cum_prev)
        if error:
            return error
        cum_prev = cum
        k += 1
    return OK


cdef inline int check_timeline(const MeterState* s, const int64_t* bounds, int64_t n_bounds,
                               int32_t j, int64_t t) noexcept nogil:
    """Debug build: the meter's timeline lies in the bounds array and its
    segment j holds t. (The caller lays timelines out to cover every reading.)"""
    if not (0 <= s.cursor < s.timeline_end < n_bounds and s.cursor <= j < s.timeline_end):
        return CHECK_SEGMENT
    if not bounds[j] < t <= bounds[j + 1]:
        return CHECK_SEGMENT
    return OK


cdef int64_t rate_readings(
    const int32_t* meter_index, const int64_t* ts, const int64_t* value, int64_t n,
    MeterState* states, int64_t n_states, const int64_t* bounds, int64_t n_bounds,
    const int32_t* slots, int64_t* bucket_qty, int64_t n_buckets,
    int64_t* anomaly_row, uint8_t* anomaly_code, int64_t* anomaly_delta,
    int64_t* anomaly_count, int* error) noexcept nogil:
    """The loop. Returns the row of a stopping error (and sets error), else -1.
    anomaly_delta holds two words per anomaly: the delta as 128-bit two's
    complement (low, high), because a negative delta can leave int64."""
    cdef int64_t i, t, v, d, found = 0, t0 = 0, q = 0
    cdef int32_t m, j, ahead
    cdef MeterState* s
    cdef uint8_t code
    cdef bint wide
    cdef int status
    for i in range(n):
        if i + PREFETCH_AHEAD < n:
            ahead = meter_index[i + PREFETCH_AHEAD]
            if ahead >= 0:
                prefetch_write(&states[ahead])
        m = meter_index[i]
        # negative: not for the kernel (unknown, null, or rejected by the
        # caller, which restores its own code from -m: a uint8)
        if DEBUG_CHECKS and not -255 <= m < n_states:
            error[0] = CHECK_METER
            anomaly_count[0] = found
            return i
        if m < 0:
            anomaly_row[found] = i
            anomaly_code[found] = UNKNOWN_METER if m == -1 else NULL_VALUE
            anomaly_delta[2 * found] = 0
            anomaly_delta[2 * found + 1] = 0
            found += 1
            continue
        s = &states[m]
        t = ts[i]
        v = value[i]
        code = 0
        d = 0
        wide = 0
        if s.is_interval:
            if v < 0:
                code = NEGATIVE_QUANTITY
        elif s.rollover_qty and (v < 0 or v >= s.rollover_qty):
            code = OUT_OF_RANGE
        if code == 0 and s.has_last:
            if t == s.last_ts:
                code = DUPLICATE if v == s.last_value else CONFLICTING_DUPLICATE
            elif t < s.last_ts:
                code = OUT_OF_ORDER
        if code == 0 and not s.has_last and not s.is_interval:
            s.last_ts = t  # baseline of a register meter: prices nothing
            s.last_value = v
            s.has_last = 1
            continue
        if code == 0:
            if s.is_interval:
                d = v
                t0 = t - s.interval_us
            else:
                t0 = s.last_ts
                if sub_overflow(v, s.last_value, &d):
                    # |v - last_value| >= 2^63: the two have opposite signs
                    if v >= 0:  # a rise beyond int64: the consumption cannot be held
                        error[0] = OVERFLOW_CONSUMPTION
                        anomaly_count[0] = found
                        return i
                    code = NEGATIVE_DELTA
                    wide = 1
                elif d < 0:
                    # 2 (d + 10^N) < 10^N, written so that nothing can overflow
                    if s.rollover_qty and d + s.rollover_qty < -d:
                        d += s.rollover_qty
                        code = ROLLOVER
                    else:
                        code = NEGATIVE_DELTA
            if mul_overflow(d, s.multiplier, &q):
                if code != NEGATIVE_DELTA:
                    error[0] = OVERFLOW_CONSUMPTION
                    anomaly_count[0] = found
                    return i
                wide = 1  # never priced; reported exactly below
            d = q
            if (code == 0 or code == ROLLOVER) and s.max_rate >= 0:
                if product_greater(q, US_PER_HOUR, s.max_rate, t - t0):
                    code = SPIKE
        if code != 0:
            anomaly_row[found] = i
            anomaly_code[found] = code
            if wide:
                wide_delta(v, s.last_value, s.multiplier, &anomaly_delta[2 * found])
            else:
                anomaly_delta[2 * found] = d
                anomaly_delta[2 * found + 1] = -1 if d < 0 else 0
            found += 1
            if code != ROLLOVER:
                continue
        j = find_segment(bounds, s.cursor, s.timeline_end, t)
        if DEBUG_CHECKS and check_timeline(s, bounds, n_bounds, j, t):
            error[0] = CHECK_SEGMENT
            anomaly_count[0] = found
            return i
        s.cursor = j
        if t0 >= bounds[j]:  # the common case: the interval sits in one segment
            status = add_to_bucket(bucket_qty, n_buckets, s.bucket_base + slots[j], q)
        else:
            status = add_split(s, bucket_qty, n_buckets, bounds, slots, j, t0, t, q)
        if status:
            error[0] = status
            anomaly_count[0] = found
            return i
        s.last_ts = t
        s.last_value = v
        s.has_last = 1
    anomaly_count[0] = found
    return -1


def accumulate(
    const int32_t[::1] meter_index,
    const int64_t[::1] ts_us,
    const int64_t[::1] value_qty,
    MeterState[::1] states,
    const int64_t[::1] bounds_us,
    const int32_t[::1] slots,
    int64_t[::1] bucket_qty,
    int64_t[::1] anomaly_row,
    uint8_t[::1] anomaly_code,
    int64_t[::1] anomaly_delta,
):
    """Rate readings into buckets, moving meter states; see rating/consumption.py.

    Buckets start as INT64_MIN (untouched). The anomaly arrays need room for
    one entry per reading, anomaly_delta for two words per reading (each
    anomaly's delta as 128-bit two's complement, low word first). Returns
    (anomaly_count, error, error_row); error 0 means none. The debug build
    raises IndexError where a caller broke the contract.
    """
    cdef int64_t n = meter_index.shape[0]
    cdef int64_t count = 0
    cdef int error = OK
    cdef int64_t error_row
    if n == 0:
        return 0, OK, -1
    if DEBUG_CHECKS and not (
        ts_us.shape[0] >= n and value_qty.shape[0] >= n and slots.shape[0] == bounds_us.shape[0]
        and anomaly_row.shape[0] >= n and anomaly_code.shape[0] >= n
        and anomaly_delta.shape[0] >= 2 * n
    ):
        raise IndexError("accumulate: an array is shorter than the readings need")
    with nogil:
        error_row = rate_readings(
            &meter_index[0], &ts_us[0], &value_qty[0], n, &states[0], states.shape[0],
            &bounds_us[0], bounds_us.shape[0], &slots[0], &bucket_qty[0], bucket_qty.shape[0],
            &anomaly_row[0], &anomaly_code[0], &anomaly_delta[0], &count, &error)
    if error in CHECK_MESSAGES:
        raise IndexError(f"accumulate, reading row {error_row}: {CHECK_MESSAGES[error]}")
    return count, error, error_row


def survey(const int32_t[::1] meter_index, const int64_t[::1] ts_us, uint8_t[::1] present):
    """One pass before rating: marks present[m] for every known meter and
    returns (min ts, max ts) over readings of known meters ((0, -1) if none)."""
    cdef int64_t i, n = meter_index.shape[0], n_present = present.shape[0]
    cdef int64_t t, low = INT64_MAX, high = INT64_MIN, bad_row = -1
    cdef int32_t m
    if DEBUG_CHECKS and ts_us.shape[0] < n:
        raise IndexError("survey: ts_us is shorter than meter_index")
    with nogil:
        for i in range(n):
            m = meter_index[i]
            if m >= 0:
                if DEBUG_CHECKS and m >= n_present:
                    bad_row = i
                    break
                present[m] = 1
                t = ts_us[i]
                low = t if t < low else low
                high = t if t > high else high
    if bad_row >= 0:
        raise IndexError(f"survey, reading row {bad_row}: {CHECK_MESSAGES[CHECK_METER]}")
    if low > high:
        return 0, -1
    return low, high
