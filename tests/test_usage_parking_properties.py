"""The vectorised parking path equals its Decimal reference exactly: pairing
(sessions, anomalies, carried state, over any split into batches) and pricing
(free minutes, steps, bands, caps, zones)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rating.model.site import Site
from rating.usage.parking_pairing import ANOMALY_CODES, Carried, pair
from rating.usage.parking_pricing import amounts_minor, charges_u
from rating.usage.parking_reference import (
    DAY_US,
    MINUTE_US,
    charge_reference,
    pair_reference,
    session_amount_reference,
    utc_offset_us,
)
from rating.usage.parking_tariff import parking_tariff
from rating.usage.zone_offsets import offsets_us

ZONES = ("UTC", "Asia/Kolkata", "Europe/London", "America/St_Johns", "Australia/Lord_Howe")
T0_US = 1_774_000_000 * 1_000_000  # March 2026: around European and Australian clock changes


@st.composite
def event_lists(draw):
    n = draw(st.integers(0, 60))
    plates = draw(st.lists(st.integers(-1, 3), min_size=n, max_size=n))
    kinds = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    steps = draw(st.lists(st.integers(-3 * 3600, 30 * 3600), min_size=n, max_size=n))
    ts = list(T0_US + np.cumsum(np.array(steps, np.int64) * 1_000_000)) if n else []
    return plates, [int(t) for t in ts], kinds


def _vector_batches(plates, ts, kinds, cuts):
    carried, sessions, anomalies, offset = Carried.empty(), [], [], 0
    for start, stop in zip([0, *cuts], [*cuts, len(plates)], strict=True):
        out = pair(np.array(plates[start:stop], np.int32), np.array(ts[start:stop], np.int64),
                   np.array(kinds[start:stop], np.int8), carried)
        carried = out.carried
        sessions += [(int(p), int(e), int(x), bool(lost), int(r) + offset) for p, e, x, lost, r in
                     zip(out.plates, out.entry_us, out.exit_us, out.lost, out.rows, strict=True)]
        anomalies += [(int(r) + offset if r else 0, int(p), int(t), ANOMALY_CODES[c]) for r, p, t, c in
                      zip(out.anomaly_rows, out.anomaly_plates, out.anomaly_us, out.anomaly_codes,
                          strict=True)]
        offset = stop
    return sorted(sessions, key=lambda s: s[4]), sorted(anomalies), carried


def _reference_batches(plates, ts, kinds, cuts):
    state: dict = {}
    sessions, anomalies, offset = [], [], 0
    for start, stop in zip([0, *cuts], [*cuts, len(plates)], strict=True):
        out = pair_reference(plates[start:stop], ts[start:stop], kinds[start:stop], state)
        sessions += [(p, e, x, lost, r + offset) for p, e, x, lost, r in out.sessions]
        anomalies += [(r + offset if r else 0, p, t, code) for r, p, t, code in out.anomalies]
        offset = stop
    return sessions, sorted(anomalies), state


@given(event_lists(), st.lists(st.integers(0, 60), max_size=3))
def test_pairing_equals_the_reference_over_any_split_into_batches(events, raw_cuts):
    plates, ts, kinds = events
    cuts = sorted({min(c, len(plates)) for c in raw_cuts})
    sessions, anomalies, carried = _vector_batches(plates, ts, kinds, cuts)
    ref_sessions, ref_anomalies, state = _reference_batches(plates, ts, kinds, cuts)
    assert sessions == ref_sessions
    assert anomalies == ref_anomalies
    assert {int(p): (int(t), bool(o)) for p, t, o in zip(carried.plates, carried.last_us, carried.open,
                                                          strict=True)} == \
        {p: (s.last_us, s.open_entry_us is not None) for p, s in state.items()}
    # every known event is either in a session, an anomaly, a carried open stay or a closed plate's last
    assert all(x >= e for _, e, x, lost, _ in sessions if not lost)


@st.composite
def tariffs(draw):
    step = draw(st.sampled_from([1, 5, 15, 60, 120, 1440]))
    bands = []
    if draw(st.integers(0, 3)):  # mostly a band: the stays then cross its edges
        start = draw(st.integers(0, 22)) * 60 + draw(st.sampled_from([0, 7, 30]))
        end = draw(st.integers(start // 60 + 1, 24)) * 60
        bands.append({"span": f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:00",
                      "price": Decimal(draw(st.integers(0, 10**7))) / 10**6})
    raw = {"free_minutes": draw(st.integers(0, 1439)), "step_minutes": step, "bands": bands,
           "price": Decimal(draw(st.integers(0, 10**8))) / 10**6, "lost_ticket": 1}
    if draw(st.booleans()):
        raw["daily_cap"] = Decimal(draw(st.integers(0, 10**9))) / 10**6
    return parking_tariff("t", raw, "test.toml")


@given(tariffs(), st.lists(st.tuples(st.integers(0, 400 * 24 * 3600),
                                     st.one_of(st.integers(0, 6 * 3600),
                                               st.integers(24 * 3600, 4 * 24 * 3600)),
                                     st.integers(0, 999_999)), min_size=1, max_size=20),
       st.sampled_from(ZONES), st.sampled_from(["half_even", "half_up"]), st.integers(0, 3))
def test_pricing_equals_the_reference(tariff, stays, zone, rounding, exponent):
    site = Site(time_zone=zone, rounding=rounding, minor_unit_exponent=exponent)
    entry = np.array([T0_US + s * 1_000_000 + us for s, _, us in stays], np.int64)
    exit_ = entry + np.array([d * 1_000_000 for _, d, _ in stays], np.int64)
    offsets = offsets_us(entry, site.zone)
    assert offsets.tolist() == [utc_offset_us(int(e), site) for e in entry]
    charges = charges_u(tariff, entry, exit_, offsets)
    expected = [charge_reference(tariff, int(e), int(x), int(o)) for e, x, o in zip(entry, exit_, offsets,
                                                                                      strict=True)]
    assert charges.tolist() == [int(c.scaleb(6)) for c in expected]
    amounts = amounts_minor(charges, site)
    assert amounts.tolist() == [int(session_amount_reference(tariff, int(e), int(x), False, site)
                                    .scaleb(exponent)) for e, x in zip(entry, exit_, strict=True)]


def test_a_long_stay_is_capped_per_24_hours_from_entry():
    tariff = parking_tariff("t", {"step_minutes": 60, "price": 20, "daily_cap": 100, "lost_ticket": 1}, "t")
    entry = np.array([T0_US], np.int64)
    days = 10 * DAY_US + 90 * MINUTE_US  # ten capped days and two started hours
    assert charges_u(tariff, entry, entry + days, np.zeros(1, np.int64)).tolist() == [1040 * 10**6]


@given(st.lists(st.tuples(st.sampled_from(["KA01AB1234", "ka 01 cd 5678", "MH12XY0001", "ZZ00"]),
                          st.integers(0, 5 * 24 * 60), st.sampled_from(["entry", "exit", "lost_ticket"])),
                max_size=40), st.sampled_from(ZONES))
def test_rate_parking_equals_the_reference_session_by_session(rows, zone):
    import dataclasses

    import pyarrow as pa

    from rating.usage.parking import rate_parking
    from rating.usage.plates import normalise
    from tests.usage_site import PLATES_CSV, USAGE_TOML

    settings = _settings(USAGE_TOML, PLATES_CSV)
    settings = dataclasses.replace(settings, site=dataclasses.replace(settings.site, time_zone=zone))
    minutes = sorted(m for _, m, _ in rows)  # arrival order is time order, with ties
    ts = [T0_US + m * MINUTE_US for m in minutes]
    table = pa.table({"plate": pa.array([r[0] for r in rows], pa.string()),
                      "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                      "event": pa.array([r[2] for r in rows], pa.string())})
    result = rate_parking(table, settings)
    plates = settings.need_plates()
    index = plates.index_of(normalise(pa.array([r[0] for r in rows], pa.string()))).tolist()
    kinds = [["entry", "exit", "lost_ticket"].index(r[2]) for r in rows]
    expected = pair_reference(index, ts, kinds, {})
    tariffs, site = plates.tariff_ids.to_pylist(), settings.site
    amounts = {row: int(session_amount_reference(settings.tariffs[tariffs[p]], e, x, lost, site)
                        .scaleb(site.minor_unit_exponent)) for p, e, x, lost, row in expected.sessions}
    sessions = result.sessions
    assert dict(zip(sessions.column("row").to_pylist(), sessions.column("amount_minor").to_pylist(),
                    strict=True)) == amounts
    assert sorted(zip(result.anomalies.column("row").to_pylist(), result.anomalies.column("code").to_pylist(),
                      strict=True)) == sorted((r, code) for r, _, _, code in expected.anomalies)


def _settings(usage: str, plates: str):
    import tempfile
    from pathlib import Path

    from rating.usage.settings import load_usage_file

    folder = Path(tempfile.mkdtemp())
    (folder / "usage.toml").write_text(usage, encoding="utf-8")
    (folder / "plates.csv").write_text(plates, encoding="utf-8")
    return load_usage_file(folder / "usage.toml")
