"""The site file's [site] table: one typed schema, every wrong value a
ConfigError naming the file and key, never a traceback (whatever the TOML)."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.errors import ConfigError, RatingError
from rating.model.site import load_site_file
from rating.prepaid.sitedocs import SiteDocs
from tests.prepaid_site import SITE_TOML
from tests.toml_strategies import TOML_VALUES, loads_or_refuses, places, replaced, toml_document


def refused(tmp_path: Path, text: str | bytes) -> ConfigError:
    path = tmp_path / "site.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(ConfigError) as error:
        load_site_file(path)
    return error.value


@pytest.mark.parametrize("text, key, reason", [
    ("site = 5", "", "must be a table"),
    ("site = []", "", "must be a table"),
    ("[site]\ntime_zone = 5", ".time_zone", "must be a string, got 5"),
    ("[site]\nrounding = [\"half_up\"]", ".rounding", "must be a string, got ['half_up']"),
    ("[site]\nholidays = 5", ".holidays", "must be an array of dates, got 5"),
    ("[site]\nholidays = [5]", ".holidays[0]", "not a date: 5"),
    ("[site]\nname = 5", ".name", "must be a string"),
    ("[site]\ncurrency = 1.5", ".currency", "must be a string"),
    ("[site]\nminor_unit_exponent = true", ".minor_unit_exponent", "must be an integer, got True"),
    ("[site]\nquantity_decimals = 2.0", ".quantity_decimals", "must be an integer"),
    ("[site]\nbilling_cycle = 5", ".billing_cycle", "must be a string"),
    ("[site]\nbilling_cycle = \"anchor:\u00b2\"", ".billing_cycle", "none of 'calendar_month'"),
    ("[site]\ntime_zone = \"America\"", ".time_zone", "unknown time zone 'America'"),  # a zoneinfo folder
    ("[site]\nrounding = \"up\"", ".rounding", "rounding must be one of"),
    ("[site]\nquantity_decimals = 7", ".quantity_decimals", "quantity_decimals must be 0..6"),
])
def test_wrong_values_name_the_file_and_key(tmp_path, text, key, reason):
    error = refused(tmp_path, text + "\n")
    assert error.where == f"{tmp_path / 'site.toml'}[site]{key}"
    assert reason in error.message


def test_a_site_file_that_is_not_utf8_names_the_line_and_column(tmp_path):
    error = refused(tmp_path, b'[site]\nname = "Caf\xe9"\n')
    assert error.where == str(tmp_path / "site.toml")
    assert error.message.startswith("not UTF-8 text: byte 0xe9 at line 2, column 12")


def test_a_byte_order_mark_is_allowed(tmp_path):
    path = tmp_path / "site.toml"
    path.write_bytes(b'\xef\xbb\xbf[site]\nname = "Lakeview"\n')
    assert load_site_file(path)[0].name == "Lakeview"


SITE_DOCUMENT = tomllib.loads(SITE_TOML, parse_float=Decimal)


@given(st.sampled_from(places(SITE_DOCUMENT)[1:]), TOML_VALUES)
def test_any_toml_value_anywhere_in_a_site_file_is_accepted_or_a_rating_error(place, value):
    text = toml_document(replaced(SITE_DOCUMENT, place, value))
    try:
        SiteDocs(site_toml=text).build()  # [site] and [prepaid], as LoadConfig builds them
    except RatingError as error:
        assert error.where and error.where.startswith("site"), error


@given(st.binary(max_size=64))
def test_random_bytes_are_a_site_or_a_config_error(data):
    loads_or_refuses(data, load_site_file, ConfigError, "site.toml")
