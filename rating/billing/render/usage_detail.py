"""The usage detail a rendered bill shows, from the cycle's readings: each
account's rated lines (rating.billing.usage), each meter's multiplier (the
registry) and its first and last register reading inside the cycle (the
readings as sent, before the multiplier; local days of the site)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from rating.billing.render.view import Readings, Usage
from rating.billing.usage import usage_by_account
from rating.readings.sources import iter_reading_batches


def usage_detail(charges: pa.Table, sources, config, first: dt.date, last: dt.date) -> dict[str, Usage]:
    """Per account its Usage for the cycle first..last (both days included)."""
    lines = usage_by_account(charges, config.site)
    readings = meter_readings(sources, config.site.zone, first, last)
    meters: dict[str, list] = {}
    for meter in config.registry.meters:
        meters.setdefault(meter.account_id, []).append(meter)
    return {account: Usage(lines.get(account, ()),
                           {str(m.meter_id): readings[str(m.meter_id)] for m in these
                            if str(m.meter_id) in readings},
                           {str(m.meter_id): m.multiplier for m in these})
            for account, these in meters.items()} | \
        {account: Usage(found) for account, found in lines.items() if account not in meters}


def meter_readings(sources, zone, first: dt.date, last: dt.date) -> dict[str, Readings]:
    """Each meter's first and last reading from local midnight of `first` to
    the end of `last`."""
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
    found: dict[str, tuple[dt.datetime, float, dt.datetime, float]] = {}
    for batch in iter_reading_batches(sources):
        table = pa.table({"meter_id": pc.cast(batch.column("meter_id"), pa.string()),
                          "ts": batch.column("ts"), "value": batch.column("value")})
        ts = table["ts"]
        keep = pc.and_(pc.greater_equal(ts, pa.scalar(start, ts.type)), pc.less(ts, pa.scalar(end, ts.type)))
        table = table.filter(pc.and_(keep, pc.is_valid(table["value"]))).sort_by("ts")
        grouped = table.group_by("meter_id", use_threads=False).aggregate(
            [("ts", "first"), ("value", "first"), ("ts", "last"), ("value", "last")])
        for meter, t0, v0, t1, v1 in zip(*(grouped[name].to_pylist() for name in (
                "meter_id", "ts_first", "value_first", "ts_last", "value_last")), strict=True):
            seen = found.get(meter)
            if seen is None:
                found[meter] = (t0, v0, t1, v1)
            else:
                low = (t0, v0) if t0 < seen[0] else seen[:2]
                high = (t1, v1) if t1 > seen[2] else seen[2:]
                found[meter] = (*low, *high)
    def shown(at: dt.datetime) -> str:
        return at.astimezone(zone).isoformat(timespec="minutes")

    return {meter: Readings(Decimal(str(v0)), Decimal(str(v1)), shown(t0), shown(t1))
            for meter, (t0, v0, t1, v1) in found.items()}
