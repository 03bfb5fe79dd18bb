"""Synthetic workloads for the benchmarks: register meters read every 15 minutes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa

from rating.config.loader import Config
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Site
from rating.model.tariff import Slab, SlabSet, Tariff, TariffVersion

READ_INTERVAL_US = 15 * 60 * 1_000_000
SITE = Site(name="bench", currency="INR", time_zone="Asia/Kolkata")
# Starts mid-month so a day of reads stays inside one billing period.
START_US = int(dt.datetime(2026, 11, 14, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000


def graduated_tariff(slab_count: int = 4) -> Tariff:
    """Slabs of 100 kWh at rising prices, the last one open."""
    slabs = tuple(
        Slab(Decimal(100 * (i + 1)) if i < slab_count - 1 else None, Decimal("3.05") + Decimal(2) * i)
        for i in range(slab_count)
    )
    version = TariffVersion("DOM", dt.date(2020, 1, 1), unit="kWh",
                            energy=SlabSet("graduated", "period", slabs))
    return Tariff("DOM", "domestic", (version,))


def bench_config(meter_count: int, tariff: Tariff | None = None) -> Config:
    tariff = tariff or graduated_tariff()
    meters = [Meter(i, f"A{i // 2}", tariff.id) for i in range(meter_count)]
    accounts = [Account(f"A{i}") for i in range((meter_count + 1) // 2)]
    return Config(site=SITE, registry=Registry(meters, accounts), tariffs={tariff.id: tariff})


@dataclass(frozen=True)
class Readings:
    meter_index: np.ndarray  # int32
    ts_us: np.ndarray  # int64
    value_qty: np.ndarray  # int64, 0.001 kWh

    def __len__(self) -> int:
        return len(self.ts_us)

    def table(self) -> pa.Table:
        return pa.table({
            "meter_id": pa.array(self.meter_index.astype(np.int64)),
            "ts": pa.array(self.ts_us, pa.timestamp("us", tz="UTC")),
            "value": pa.array(self.value_qty.astype(np.float64) / 1000),
        })


def register_readings(meter_count: int, reads_per_meter: int, *, grouped: bool,
                      seed: int = 7) -> Readings:
    """Cumulative registers with 0-2 kWh per interval (0.001 resolution).

    Time order: every meter once per 15-minute slot, meters shuffled within
    the slot (as aggregators deliver them). Grouped: all of one meter's
    reads together, meters in registry order.
    """
    rng = np.random.default_rng(seed)
    use = rng.integers(0, 2000, size=(reads_per_meter, meter_count), dtype=np.int64)
    registers = np.cumsum(use, axis=0) + rng.integers(0, 10**8, size=meter_count)
    slots = START_US + np.arange(reads_per_meter, dtype=np.int64) * READ_INTERVAL_US
    if grouped:
        meter_index = np.repeat(np.arange(meter_count, dtype=np.int32), reads_per_meter)
        ts = np.tile(slots, meter_count)
        values = registers.T.reshape(-1)
    else:
        order = np.argsort(rng.random((reads_per_meter, meter_count)), axis=1).astype(np.int32)
        meter_index = order.reshape(-1)
        ts = np.repeat(slots, meter_count)
        values = np.take_along_axis(registers, order, axis=1).reshape(-1)
    return Readings(np.ascontiguousarray(meter_index), np.ascontiguousarray(ts),
                    np.ascontiguousarray(values))
