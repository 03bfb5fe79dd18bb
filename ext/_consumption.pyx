# Consumption kernel: readings in arrival order -> per-bucket quantities.
#
# The caller (rating/consumption.py) has validated every input; this loop
# trusts them. Semantics: docs/semantics.md, "Meters and readings" and
# "Splitting an interval over boundaries".
from libc.stdint cimport int32_t, int64_t, uint8_t

from libc.stdint cimport INT64_MAX, INT64_MIN

from _types cimport MeterState, add_overflow, int128, mul_overflow, prefetch_write

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

# Errors that stop the batch (the caller keeps nothing of it).
cdef enum:
    OK = 0
    OVERFLOW_CONSUMPTION = 1
    OVERFLOW_BUCKET = 2

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


cdef inline int add_to_bucket(int64_t* bucket, int64_t q) noexcept nogil:
    """bucket += q, marking it touched; 1 on overflow."""
    cdef int64_t total = bucket[0]
    if total == UNTOUCHED:
        total = 0
    if add_overflow(total, q, &total):
        return 1
    bucket[0] = total
    return 0


cdef inline int add_split(MeterState* s, int64_t* bucket_qty, const int64_t* bounds,
                          const int32_t* slots, int32_t j, int64_t t0, int64_t t1,
                          int64_t q) noexcept nogil:
    """Spread q over the segments that (t0, t1] overlaps, pro rata by time
    with cumulative floor rounding, so the parts sum to q exactly."""
    cdef int32_t k = j
    cdef int64_t duration = t1 - t0
    cdef int64_t cum_prev = 0, cum, end
    while bounds[k] > t0:  # walk back to the segment holding the interval start
        k -= 1
    while k <= j:
        if k == j:
            cum = q
        else:
            end = bounds[k + 1]
            cum = <int64_t>((<int128>q * (end - t0)) / duration)
        if add_to_bucket(&bucket_qty[s.bucket_base + slots[k]], cum - cum_prev):
            return OVERFLOW_BUCKET
        cum_prev = cum
        k += 1
    return OK


cdef int64_t rate_readings(
    const int32_t* meter_index, const int64_t* ts, const int64_t* value, int64_t n,
    MeterState* states, const int64_t* bounds, const int32_t* slots, int64_t* bucket_qty,
    int64_t* anomaly_row, uint8_t* anomaly_code, int64_t* anomaly_delta,
    int64_t* anomaly_count, int* error) noexcept nogil:
    """The loop. Returns the row of a stopping error (and sets error), else -1."""
    cdef int64_t i, t, v, t0, d, q, found = 0
    cdef int32_t m, j, ahead
    cdef MeterState* s
    cdef uint8_t code
    for i in range(n):
        if i + PREFETCH_AHEAD < n:
            ahead = meter_index[i + PREFETCH_AHEAD]
            if ahead >= 0:
                prefetch_write(&states[ahead])
        m = meter_index[i]
        if m < 0:
            anomaly_row[found] = i
            anomaly_code[found] = UNKNOWN_METER if m == -1 else NULL_VALUE
            anomaly_delta[found] = 0
            found += 1
            continue
        s = &states[m]
        t = ts[i]
        v = value[i]
        code = 0
        d = 0
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
                d = v - s.last_value
                t0 = s.last_ts
                if d < 0:
                    if s.rollover_qty and 2 * (d + s.rollover_qty) < s.rollover_qty:
                        d += s.rollover_qty
                        code = ROLLOVER
                    else:
                        code = NEGATIVE_DELTA
            if mul_overflow(d, s.multiplier, &q):
                error[0] = OVERFLOW_CONSUMPTION
                anomaly_count[0] = found
                return i
            d = q
            if code != NEGATIVE_DELTA and s.max_rate >= 0:
                if <int128>q * US_PER_HOUR > <int128>s.max_rate * (t - t0):
                    code = SPIKE
        if code != 0:
            anomaly_row[found] = i
            anomaly_code[found] = code
            anomaly_delta[found] = d
            found += 1
            if code != ROLLOVER:
                continue
        j = find_segment(bounds, s.cursor, s.timeline_end, t)
        s.cursor = j
        if t0 >= bounds[j]:  # the common case: the interval sits in one segment
            if add_to_bucket(&bucket_qty[s.bucket_base + slots[j]], q):
                error[0] = OVERFLOW_BUCKET
                anomaly_count[0] = found
                return i
        elif add_split(s, bucket_qty, bounds, slots, j, t0, t, q):
            error[0] = OVERFLOW_BUCKET
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
    one entry per reading. Returns (anomaly_count, error, error_row); error 0
    means none.
    """
    cdef int64_t n = meter_index.shape[0]
    cdef int64_t count = 0
    cdef int error = OK
    cdef int64_t error_row
    if n == 0:
        return 0, OK, -1
    with nogil:
        error_row = rate_readings(
            &meter_index[0], &ts_us[0], &value_qty[0], n, &states[0], &bounds_us[0],
            &slots[0], &bucket_qty[0], &anomaly_row[0],
            &anomaly_code[0], &anomaly_delta[0], &count, &error)
    return count, error, error_row


def survey(const int32_t[::1] meter_index, const int64_t[::1] ts_us, uint8_t[::1] present):
    """One pass before rating: marks present[m] for every known meter and
    returns (min ts, max ts) over readings of known meters ((0, -1) if none)."""
    cdef int64_t i, n = meter_index.shape[0]
    cdef int64_t t, low = INT64_MAX, high = INT64_MIN
    cdef int32_t m
    with nogil:
        for i in range(n):
            m = meter_index[i]
            if m >= 0:
                present[m] = 1
                t = ts_us[i]
                low = t if t < low else low
                high = t if t > high else high
    if low > high:
        return 0, -1
    return low, high
