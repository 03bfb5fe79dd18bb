"""The columnar registry: files give the same meters, accounts and kernel
columns as the same registry built from objects; hostile files are refused
naming the file, row and column (10^7 rows too); the billing columns reach
the bill (addressed to the owner or the tenant); a bill run rates its month,
so a meter that sent nothing is charged its tariff's fixed and minimum charges."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.billing import render
from rating.billing.compute import draft_bill
from rating.billing.inputs import load_site_billing, run_cycle
from rating.cli.commands import main
from rating.cli.demo import generate_demo
from rating.errors import InputError
from rating.inputs import cells
from rating.model.registry import Account, Meter, Registry, load_registry, registry_from_tables
from rating.model.site import Cycle, Site
from tests.test_billing_render import pdftotext

SITE = Site()
CYCLES = (None, Cycle(1), Cycle(5), Cycle(1, 3))
CYCLE_TEXT = {None: "", Cycle(1): "monthly", Cycle(5): "anchor:5", Cycle(1, 3): "quarterly"}
DAY = st.dates(dt.date(2024, 1, 1), dt.date(2026, 12, 31))


@st.composite
def registries(draw) -> tuple[list[Meter], list[Account]]:
    n_accounts = draw(st.integers(1, 6))
    accounts = []
    for i in range(n_accounts):
        start = draw(st.none() | DAY)
        until = draw(st.none() | DAY.filter(lambda d, s=start: s is None or d >= s))
        tenant = draw(st.sampled_from(["", "Meera Nair", "王小明"]))
        accounts.append(Account(
            f"A-{i}", name=draw(st.sampled_from(["", "Asha Patil", "राजेश"])),
            area=draw(st.none() | st.decimals(0, 10_000, places=2).map(lambda d: d.normalize())),
            cycle=draw(st.sampled_from(CYCLES)), tariff_id=draw(st.none() | st.just("MAINT")),
            active_from=start, active_until=until, tenant=tenant,
            bill_to=draw(st.sampled_from(["owner", "tenant"])) if tenant else "owner",
            address=draw(st.sampled_from(["", "Flat 101\nBaner Road, Pune"])),
            occupancy=draw(st.sampled_from(["owner", "let_out", "vacant"])),
            tags=frozenset(draw(st.lists(st.sampled_from(["parking", "club", "shop"]), max_size=2))),
            email=draw(st.sampled_from(["", "a@example.org"])), phone=draw(st.sampled_from(["", "+91 98"]))))
    meters = [Meter(f"M-{j}", f"A-{draw(st.integers(0, n_accounts - 1))}", draw(st.sampled_from(["E", "W"])),
                    mode=draw(st.sampled_from(["register", "interval"])), multiplier=draw(st.integers(1, 40)),
                    register_digits=draw(st.integers(0, 12)),
                    max_rate_per_hour=draw(st.none() | st.decimals(0, 10**6, places=3)),
                    interval_minutes=draw(st.sampled_from([15, 30, 60])),
                    unit=draw(st.sampled_from(["", "kWh"])),
                    wallet=draw(st.sampled_from(["main", "water"])), active_from=draw(st.none() | DAY))
              for j in range(draw(st.integers(0, 8)))]
    return meters, accounts


def as_text_tables(meters: list[Meter], accounts: list[Account]) -> tuple[pa.Table, pa.Table]:
    """The registry as a utility's CSV export reads: every cell text, None blank."""
    def text(value) -> str | None:
        return None if value is None or value == "" else str(value)
    meter_table = pa.table({name: pa.array([text(getattr(m, name)) for m in meters], pa.string())
                            for name in Meter.__dataclass_fields__})
    fields = [f for f in Account.__dataclass_fields__ if f not in ("cycle", "tags")]
    account_table = pa.table({**{name: pa.array([text(getattr(a, name)) for a in accounts], pa.string())
                                 for name in fields},
                              "billing_cycle": [CYCLE_TEXT[a.cycle] or None for a in accounts],
                              "tags": [",".join(sorted(a.tags)) or None for a in accounts]})
    return meter_table, account_table


@settings(max_examples=60, deadline=None)
@given(registries())
def test_a_registry_read_from_columns_equals_the_same_registry_built_from_objects(registry_rows):
    meters, accounts = registry_rows
    built = Registry(meters, accounts)
    read = registry_from_tables(*as_text_tables(meters, accounts), site=SITE, meters_where="m",
                                accounts_where="a")
    assert read.meters == meters and list(read.meters) == list(built.meters)
    assert dict(read.accounts) == dict(built.accounts)
    assert list(read.accounts) == [a.account_id for a in accounts]
    for name, column in built.columns(SITE).items():
        assert np.array_equal(read.columns(SITE)[name], column), name
    for days in ("meter_active_days", "account_active_days"):
        pairs = zip(getattr(read, days), getattr(built, days), strict=True)
        assert all(np.array_equal(x, y) for x, y in pairs)
    assert np.array_equal(read.account_anchor_days(SITE), built.account_anchor_days(SITE))
    assert np.array_equal(read.account_of_meter, built.account_of_meter) and read.dated == built.dated
    for i, account in enumerate(accounts):
        assert read.accounts[account.account_id] == account and read.accounts.at(i) == account
        assert read.cycle_of(account.account_id, SITE) == (account.cycle or SITE.default_cycle)
    assert all(read.meters[i] == m for i, m in enumerate(meters))
    assert read.columns(SITE) is read.columns(SITE)  # built once


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["", " ", "NA", " #N/A\t", "N/A ", "x", " x ", "\u00a0NULL", "null", "नाम",
                                 "NaN\u3000", "-", None]), min_size=1, max_size=12))
def test_blank_cells_are_found_as_trimming_every_cell_finds_them(values):
    array = pa.array(values, pa.string())
    text = cells.text(pa.table({"x": array}), "x", where="f")
    trimmed = pc.utf8_trim_whitespace(array)
    want = pc.if_else(pc.is_in(trimmed, value_set=pa.array(["", *cells.PLACEHOLDERS])), None, array)
    assert text.to_pylist() == want.to_pylist()


METERS = {"meter_id": ["E-1", "E-2"], "account_id": ["A-1", "A-1"], "tariff_id": ["E", "E"]}
ACCOUNTS = {"account_id": ["A-1"]}


def refused(tmp_path, meters: dict, accounts: dict = ACCOUNTS, suffix: str = ".csv") -> InputError:
    paths = tmp_path / f"meters{suffix}", tmp_path / f"accounts{suffix}"
    for table, path in zip((meters, accounts), paths, strict=True):
        (pacsv.write_csv if suffix == ".csv" else pq.write_table)(pa.table(table), path)
    with pytest.raises(InputError) as error:
        load_registry(*paths, SITE)
    return error.value


@pytest.mark.parametrize(("meters", "accounts", "message", "file", "row", "column"), [
    ({**METERS, "meter_id": ["E-1", "E-1"]}, ACCOUNTS, "duplicate meter_id 'E-1' (first in row 1)", "meters",
     2, "meter_id"),
    ({**METERS, "meter_id": [7, 7]}, ACCOUNTS, "duplicate meter_id ", "meters", 2, "meter_id"),
    (METERS, {"account_id": ["A-1", "A-1"]}, "duplicate account_id 'A-1'", "accounts", 2, "account_id"),
    ({**METERS, "account_id": ["A-1", "A-9"]}, ACCOUNTS, "meter 'E-2' belongs to unknown account 'A-9'",
     "meters", 2, "account_id"),
    ({**METERS, "meter_id": ["E-1", " "]}, ACCOUNTS, "meter_id is empty", "meters", 2, "meter_id"),
    ({**METERS, "multiplier": ["1", "ten"]}, ACCOUNTS, "not a number: 'ten'", "meters", 2, "multiplier"),
    ({**METERS, "multiplier": [1, 2**40]}, ACCOUNTS, "out of range", "meters", 2, "multiplier"),
    (METERS, {**ACCOUNTS, "bill_to": ["landlord"]}, "bill_to must be 'owner' or 'tenant'", "accounts", 1,
     "bill_to"),
    (METERS, {**ACCOUNTS, "bill_to": ["tenant"]}, "bill_to is tenant but the tenant column is empty",
     "accounts", 1, "tenant"),
    (METERS, {**ACCOUNTS, "occupancy": ["rented"]}, "occupancy must be", "accounts", 1, "occupancy"),
])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_hostile_registry_files_are_refused_naming_file_row_and_column(tmp_path, meters, accounts, message,
                                                                       file, row, column, suffix):
    error = refused(tmp_path, meters, accounts, suffix)
    assert message in error.message and error.where.startswith(str(tmp_path / file))
    assert (error.details["row"], error.details["column"]) == (str(row), column), error


def test_ten_million_meters_with_one_bad_row_at_the_end_name_that_row():
    n = 10**7
    ids = pc.cast(pa.array(np.arange(n)), pa.string())
    multiplier = pa.array(np.ones(n, dtype=np.int64)).cast(pa.string())
    multiplier = pa.concat_arrays([multiplier.slice(0, n - 1), pa.array(["0"])])
    meters = pa.table({"meter_id": ids, "account_id": pa.array(["A"] * n), "tariff_id": pa.array(["E"] * n),
                       "multiplier": multiplier})
    with pytest.raises(InputError) as error:
        registry_from_tables(meters, pa.table({"account_id": ["A"]}), site=SITE, meters_where="meters.csv",
                             accounts_where="accounts.csv")
    assert error.value.where == f"meters.csv row {n}, column multiplier"
    assert "0 is out of range: multiplier must be 1..2147483647" in error.value.message


@pytest.fixture(scope="module")
def society(tmp_path_factory):
    return generate_demo(tmp_path_factory.mktemp("society"), towers=1, seed=5).site_file


def test_a_bill_to_the_tenant_shows_the_tenants_name_and_the_units_address(society, tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    for path in society.parent.iterdir():
        if path.is_file():
            (folder / path.name).write_bytes(path.read_bytes())
    accounts = pacsv.read_csv(folder / "accounts.csv", convert_options=pacsv.ConvertOptions(
        column_types={"account_id": pa.string()}))
    first = accounts["account_id"][0].as_py()
    let = [i == 0 for i in range(accounts.num_rows)]
    accounts = accounts.append_column("tenant", pa.array(["Meera Nair" if x else "" for x in let]))
    accounts = accounts.append_column("bill_to", pa.array(["tenant" if x else "owner" for x in let]))
    accounts = accounts.append_column("address", pa.array(["Flat 101, Tower A\nबाणेर रोड, पुणे" if x else ""
                                                           for x in let]))
    pacsv.write_csv(accounts, folder / "accounts.csv")
    billing = load_site_billing(folder / "site.toml")
    units = {unit.account_id: unit for unit in billing.units()}
    cycle = run_cycle(billing.site_id, "2025-05", billing.billing)
    draft = draft_bill(cycle, units[first], billing.billing)
    view = render.bill_view(draft, billing.document)
    html, pdf = render.bill_html(view), pdftotext(render.bill_pdf(view))
    owner = accounts["name"][0].as_py()
    for text in (html, pdf):
        assert "Meera Nair" in text and "Flat 101, Tower A" in text and "बाणेर रोड, पुणे" in text
        assert owner not in text
    other = draft_bill(cycle, units[accounts["account_id"][1].as_py()], billing.billing)
    assert other.bill_to == accounts["name"][1].as_py() and other.address == ""


def test_a_flat_whose_water_meter_sent_nothing_is_billed_its_minimum_charge(society, tmp_path, capsys):
    """The demo's WATER-DOM has a minimum charge: rating the cycle's month
    charges it to a meter without readings (without the month asked, the
    head would be billed zero with an anomaly)."""
    meters = pacsv.read_csv(society.parent / "meters.csv", convert_options=pacsv.ConvertOptions(
        column_types={"meter_id": pa.string(), "account_id": pa.string()}))
    water = meters.filter(pc.equal(meters["tariff_id"], "WATER-DOM"))
    flat, meter = water["account_id"][0].as_py(), water["meter_id"][0].as_py()
    readings = pq.read_table(society.parent / "readings.parquet")
    kept = readings.filter(pc.not_equal(readings["meter_id"].cast(pa.string()), meter))
    assert kept.num_rows < readings.num_rows
    path = tmp_path / "readings.parquet"
    pq.write_table(kept, path)
    code = main(["bills", "run", "--site", str(society), "--ledger", str(tmp_path / "ledger.db"), "--cycle",
                 "2025-05", "--accounts", "100", "--readings", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    bill = re.search(rf"^{re.escape(flat)} .*?(?=^\S)", out, re.S | re.M).group(0)
    water_line = re.search(r"^  water\s+charge\s+([\d,.]+)", bill, re.M)
    assert water_line is not None and Decimal(water_line.group(1).replace(",", "")) >= 90, bill
    assert "no readings" not in bill


def test_a_loaded_registry_pickles_with_its_indexes_rebuilt(tmp_path):
    """A Config travels to Dask workers and child processes by pickle; the id
    indexes hold C buffers and are rebuilt on the other side."""
    import pickle

    from rating.config.loader import load_config

    society = generate_demo(tmp_path / "society", seed=3)
    config = load_config(society.site_file)
    ids = pa.array([config.registry.meter_ids[5].as_py(), "no-such-meter"])
    before = config.registry.index_of(ids)
    copy = pickle.loads(pickle.dumps(config))
    assert list(copy.registry.index_of(ids)) == list(before) == [5, -1]
    assert copy.registry.accounts.keys() == config.registry.accounts.keys()
