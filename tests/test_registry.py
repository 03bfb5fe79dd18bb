"""Meter and account registries from tables: every numeric column typed and
checked a column at a time (rating.inputs.cells), blanks and spreadsheet
placeholders null (never 0), every refusal naming the file, row and column."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.config.loader import load_config
from rating.errors import InputError
from rating.inputs import cells
from rating.model.registry import Account, Meter, Registry, load_registry, registry_from_tables
from rating.model.site import Site
from tests.test_config import write_site

SITE = Site()
METERS = pa.table({"meter_id": ["E-1"], "account_id": ["A-1"], "tariff_id": ["E"]})
ACCOUNTS = pa.table({"account_id": ["A-1"]})
# What pyarrow's CSV reader reads as null by default: what spreadsheets write for "no value".
PLACEHOLDERS = cells.PLACEHOLDERS


def registry(meters: pa.Table = METERS, accounts: pa.Table = ACCOUNTS, **options) -> Registry:
    return registry_from_tables(meters, accounts, site=SITE, meters_where="meters.csv",
                                accounts_where="accounts.csv", **options)


def refused(meters: pa.Table = METERS, accounts: pa.Table = ACCOUNTS, **options) -> InputError:
    with pytest.raises(InputError) as error:
        registry(meters, accounts, **options)
    return error.value


def refused_file(folder: Path, meters: pa.Table = METERS, accounts: pa.Table = ACCOUNTS, *,
                 suffix: str = ".csv") -> InputError:
    """The error of loading the two tables written as files (CSV or Parquet)."""
    paths = folder / f"meters{suffix}", folder / f"accounts{suffix}"
    for table, path in zip((meters, accounts), paths, strict=True):
        if suffix == ".csv":
            pacsv.write_csv(table, path)
        else:
            pq.write_table(table, path)
    with pytest.raises(InputError) as error:
        load_registry(*paths, SITE)
    assert error.value.where.startswith(str(folder)), error.value
    return error.value


def with_column(table: pa.Table, name: str, values: list) -> pa.Table:
    return table.append_column(name, pa.array(values))


# -- blanks and placeholders (#N/A, NA, NULL, ...) are null, never 0 ---------------------------


@pytest.mark.parametrize("cell", ["", *PLACEHOLDERS])
def test_a_placeholder_area_is_an_error_where_the_account_tariff_charges_per_area(tmp_path, cell):
    accounts = f"account_id,name,area,tariff_id\nA-1,Flat 1,70.5,MAINT\nA-2,Flat 2,{cell},MAINT\n"
    site_file = write_site(tmp_path, accounts=accounts)
    with pytest.raises(InputError) as error:
        load_config(site_file)
    accounts_csv = tmp_path / "registry" / "accounts.csv"
    assert error.value.where == f"{accounts_csv} row 2, column area"
    assert "account 'A-2' has no area" in error.value.message and "'MAINT'" in error.value.message
    assert error.value.details == {"file": str(accounts_csv), "row": "2", "column": "area"}


def test_a_placeholder_area_is_an_error_where_a_meter_tariff_charges_per_area():
    meters = pa.table({"meter_id": ["E-1", "M-1"], "account_id": ["A-1", "A-2"], "tariff_id": ["E", "MAINT"]})
    accounts = pa.table({"account_id": ["A-1", "A-2"], "area": ["80", "#N/A"]})
    error = refused(meters, accounts, priced_by_area={"MAINT"})
    assert error.where == "accounts.csv row 2, column area" and "tariff 'MAINT'" in error.message


@pytest.mark.parametrize("cell", ["", "#N/A", "NULL"])
def test_a_placeholder_area_is_no_area_where_nothing_charges_per_area(cell):
    accounts = pa.table({"account_id": ["A-1", "A-2"], "area": ["80.5", cell or None]})
    loaded = registry(accounts=accounts, priced_by_area={"MAINT"})
    areas = {a.account_id: a.area for a in loaded.accounts.values()}
    assert areas == {"A-1": Decimal("80.5"), "A-2": None}


def test_an_accounts_table_without_an_area_column_is_refused_when_an_area_is_charged():
    accounts = pa.table({"account_id": ["A-1"], "tariff_id": ["MAINT"]})
    assert refused(accounts=accounts, priced_by_area={"MAINT"}).where == "accounts.csv row 1, column area"


def test_nan_in_a_typed_area_column_is_null_and_other_numbers_are_exact(tmp_path):
    path = tmp_path / "accounts.parquet"
    pq.write_table(pa.table({"account_id": ["A-1", "A-2", "A-3"], "area": [70.1, float("nan"), None]}), path)
    table = pq.read_table(path)
    areas = [a.area for a in registry(accounts=table).accounts.values()]
    assert areas == [Decimal("70.1"), None, None]  # 70.1, not the float's 70.099999999999994316...


def test_an_account_built_in_code_without_an_area_is_refused_by_the_area_charge():
    with pytest.raises(InputError, match="account 'A' has no area, but tariff T charges per area"):
        Account("A").area_for("tariff T")


def test_blank_cells_take_the_documented_defaults():
    meters = METERS.append_column("multiplier", pa.array([None], pa.string()))
    for name in ("register_digits", "interval_minutes", "max_rate_per_hour", "mode", "wallet"):
        meters = meters.append_column(name, pa.array([""]))
    assert registry(meters).meters == [Meter("E-1", "A-1", "E")]


# -- numbers: finite, in range, exact; never hexadecimal or a traceback ------------------------


NUMERIC_COLUMNS = ["multiplier", "register_digits", "interval_minutes", "max_rate_per_hour"]


@pytest.mark.parametrize("column", NUMERIC_COLUMNS)
@pytest.mark.parametrize("cell, reason", [
    ("Infinity", "not a number"), ("-inf", "not a number"), ("0x10", "not a number"), ("1,5", "not a number"),
    ("1e30", "out of range"), ("-1", "out of range"), ("1e400", "out of range"),
    ("72057594037927951", "out of range"),  # x 60e6 us wraps int64 to exactly 15 minutes
])
def test_bad_meter_numbers_name_the_row_and_column(tmp_path, column, cell, reason):
    meters = with_column(pa.concat_tables([METERS, METERS.set_column(0, "meter_id", pa.array(["E-2"]))]),
                         column, ["1", cell])
    error = refused_file(tmp_path, meters)
    assert error.where == f"{tmp_path / 'meters.csv'} row 2, column {column}", error
    assert reason in error.message
    assert error.details == {"file": str(tmp_path / "meters.csv"), "row": "2", "column": column}


@pytest.mark.parametrize("column, cell, reason", [
    ("multiplier", "1.5", "not a whole number"), ("interval_minutes", "0", "out of range"),
    ("register_digits", "13", "out of range"), ("max_rate_per_hour", "0.0001", "more than 3 decimals"),
    ("multiplier", "2147483648", "out of range"),  # the kernel keeps multipliers as int32
    ("interval_minutes", "527041", "out of range"),  # longer than a leap year
])
def test_meter_numbers_stay_within_what_the_kernel_holds(tmp_path, column, cell, reason):
    error = refused_file(tmp_path, with_column(METERS, column, [cell]))
    assert error.where.endswith(f"meters.csv row 1, column {column}") and reason in error.message


@pytest.mark.parametrize("cell, reason", [("Infinity", "not a number"), ("1e30", "out of range"),
                                          ("-0.5", "out of range"), ("70.1234567", "more than 6 decimals")])
def test_bad_areas_name_the_row_and_column(tmp_path, cell, reason):
    error = refused_file(tmp_path, accounts=with_column(ACCOUNTS, "area", [cell]))
    assert error.where.endswith("accounts.csv row 1, column area") and reason in error.message


@pytest.mark.parametrize("column", ["interval_minutes", "multiplier"])
@pytest.mark.parametrize("value", [float("inf"), 1e30, 2**62])
def test_typed_parquet_columns_are_checked_like_text(tmp_path, column, value):
    error = refused_file(tmp_path, with_column(METERS, column, [value]), suffix=".parquet")
    assert error.where.endswith(f"meters.parquet row 1, column {column}")


def test_numbers_accept_exponents_signs_and_spaces():
    meters = with_column(with_column(METERS, "multiplier", [" +4e1 "]), "max_rate_per_hour", ["1.5E2"])
    (meter,) = registry(meters).meters
    assert (meter.multiplier, meter.max_rate_per_hour) == (40, Decimal(150))


@given(st.text(max_size=12))
def test_any_cell_text_is_a_value_or_an_input_error(text):
    for column in NUMERIC_COLUMNS:
        try:
            registry(with_column(METERS, column, [text]))
        except InputError as error:
            assert error.where == f"meters.csv row 1, column {column}"
    try:
        registry(accounts=with_column(ACCOUNTS, "area", [text]))
    except InputError as error:
        assert error.where == "accounts.csv row 1, column area"


# -- ids and references -------------------------------------------------------------------------


def test_a_duplicate_account_id_names_the_id_and_both_rows(tmp_path):
    site_file = write_site(tmp_path, accounts="account_id,name,area,tariff_id\nA-1,Flat 1,70.5,MAINT\n"
                                              "A-2,Flat 2,80,\nA-1,Flat 3,90,\n")
    with pytest.raises(InputError) as error:
        load_config(site_file)
    assert error.value.where == f"{tmp_path / 'registry' / 'accounts.csv'} row 3, column account_id"
    assert error.value.message == "duplicate account_id 'A-1' (first in row 1)"


def test_a_duplicate_meter_id_and_an_unknown_account_name_their_rows(tmp_path):
    meters = pa.table({"meter_id": ["E-1", "E-2", "E-1"], "account_id": ["A-1"] * 3, "tariff_id": ["E"] * 3})
    error = refused_file(tmp_path, meters)
    assert (error.where, error.message) == (f"{tmp_path / 'meters.csv'} row 3, column meter_id",
                                            "duplicate meter_id 'E-1' (first in row 1)")
    meters = pa.table({"meter_id": ["E-1", "E-2"], "account_id": ["A-1", "A-9"], "tariff_id": ["E", "E"]})
    assert str(refused(meters)) == ("meters.csv row 2, column account_id: meter 'E-2' belongs to unknown "
                                    "account 'A-9'")


def test_a_column_given_twice_is_refused():
    meters = pa.Table.from_arrays([pa.array(["E-1"]), pa.array(["A-1"]), pa.array(["E"]), pa.array(["1"]),
                                   pa.array(["2"])],
                                  names=["meter_id", "account_id", "tariff_id", "multiplier", "multiplier"])
    assert "column 'multiplier' appears 2 times" in str(refused(meters))


def test_non_utf8_registry_files_name_the_header_or_the_cell(tmp_path: Path):
    site_file = write_site(tmp_path)
    meters = tmp_path / "registry" / "meters.csv"
    meters.write_bytes(b"meter_id,account_id,tariff_id,\xff\xfe\nE-1,A-1,ELEC,\n")
    with pytest.raises(InputError, match=r"meters.csv: not UTF-8 text: byte 0xff at line 1, column 31"):
        load_config(site_file)
    meters.write_bytes(b"meter_id,account_id,tariff_id\nE-1,A-1,ELEC\nE-\xff,A-1,ELEC\n")
    with pytest.raises(InputError) as error:
        load_config(site_file)
    assert error.value.where == f"{meters} row 2, column meter_id" and "not UTF-8" in error.value.message
