"""UTC offsets of many instants in a site's zone, vectorised: the zone's
transitions inside the instants' span are found by probing every 6 hours and
bisecting to the microsecond, then each instant looks its offset up."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_PROBE_US = 6 * 3600 * 1_000_000  # zones change their offset at most once in 6 hours
_ONE_US = dt.timedelta(microseconds=1)


def offset_at_us(instant_us: int, zone: ZoneInfo) -> int:
    offset = (_EPOCH + dt.timedelta(microseconds=instant_us)).astimezone(zone).utcoffset()
    assert offset is not None
    return offset // _ONE_US


def offsets_us(instants_us: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """The zone's UTC offset (int64 µs) at each instant."""
    if len(instants_us) == 0:
        return np.zeros(0, np.int64)
    low, high = int(instants_us.min()), int(instants_us.max())
    starts, offsets = [low], [offset_at_us(low, zone)]
    probe = low
    while probe < high:
        following = min(probe + _PROBE_US, high)
        offset = offset_at_us(following, zone)
        if offset != offsets[-1]:
            starts.append(_transition_us(probe, following, offsets[-1], zone))
            offsets.append(offset)
        probe = following
    at = np.searchsorted(np.array(starts, np.int64), instants_us, side="right") - 1
    return np.array(offsets, np.int64)[at]


def _transition_us(low: int, high: int, offset_low: int, zone: ZoneInfo) -> int:
    """The first instant in (low, high] whose offset is not `offset_low`."""
    while high - low > 1:
        middle = (low + high) // 2
        if offset_at_us(middle, zone) == offset_low:
            low = middle
        else:
            high = middle
    return high
