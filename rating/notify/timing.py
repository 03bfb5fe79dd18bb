"""When a notice may go: the step's day at the site's sending time in the
resident's zone, moved out of quiet hours (never dropped)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

Quiet = tuple[dt.time, dt.time] | None


def in_quiet(local: dt.time, quiet: Quiet) -> bool:
    if quiet is None:
        return False
    start, end = quiet
    return start <= local < end if start < end else (local >= start or local < end)


def after_quiet_us(at_us: int, zone: str, quiet: Quiet) -> int:
    """`at_us`, or the end of the quiet hours it falls in (resident's zone)."""
    if quiet is None:
        return at_us
    tz = _zone(zone)
    local = dt.datetime.fromtimestamp(at_us / 1e6, tz)
    if not in_quiet(local.time(), quiet):
        return at_us
    end = dt.datetime.combine(local.date(), quiet[1], tzinfo=tz)
    if end <= local:
        end = dt.datetime.combine(local.date() + dt.timedelta(days=1), quiet[1], tzinfo=tz)
    return int(end.timestamp() * 1_000_000)


@lru_cache(maxsize=4096)
def send_us(day: dt.date, send_at: dt.time, zone: str, quiet: Quiet) -> int:
    """The moment a step's notices of `day` become due in `zone`."""
    at = dt.datetime.combine(day, send_at, tzinfo=_zone(zone))
    return after_quiet_us(int(at.timestamp() * 1_000_000), zone, quiet)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
