"""load_config: the site file, its [files] table, and tariff references."""

from __future__ import annotations

from pathlib import Path

import pytest

from rating.config.loader import Config, check_tariff_ids, load_config
from rating.errors import ConfigError, InputError, TariffError

TARIFFS = """
[[tariff]]
id = "ELEC"
unit = "kWh"
effective_from = 2025-01-01
fixed_charge = 50
[tariff.energy]
slabs = [{ upto = 100, price = 5 }, { price = 7 }]

[[tariff]]
id = "MAINT"
effective_from = 2025-01-01
area_charge = 3.5
"""

MORE_TARIFFS = """
[[tariff]]
id = "WATER"
unit = "m3"
effective_from = 2025-01-01
[tariff.energy]
slabs = [{ price = 20 }]
"""

SITE = """
[site]
name = "Test Towers"
time_zone = "Asia/Kolkata"

[files]
tariffs = {tariffs}
meters = "registry/meters.csv"
accounts = "registry/accounts.csv"
{extra}
"""

METERS = "meter_id,account_id,tariff_id\nE-1,A-1,ELEC\nW-1,A-1,WATER\nE-2,A-2,ELEC\n"
ACCOUNTS = "account_id,name,area,tariff_id\nA-1,Flat 1,70.5,MAINT\nA-2,Flat 2,80,\n"


def write_site(
    folder: Path,
    *,
    tariffs: str = '["t/elec.toml", "t/water.toml"]',
    extra: str = "",
    meters: str = METERS,
    accounts: str = ACCOUNTS,
) -> Path:
    (folder / "t").mkdir(exist_ok=True)
    (folder / "registry").mkdir(exist_ok=True)
    (folder / "t" / "elec.toml").write_text(TARIFFS)
    (folder / "t" / "water.toml").write_text(MORE_TARIFFS)
    (folder / "registry" / "meters.csv").write_text(meters)
    (folder / "registry" / "accounts.csv").write_text(accounts)
    site = folder / "site.toml"
    site.write_text(SITE.format(tariffs=tariffs, extra=extra))
    return site


def test_loads_everything_relative_to_the_site_file(tmp_path, monkeypatch):
    site_file = write_site(tmp_path)
    monkeypatch.chdir("/")  # paths must not depend on the working directory
    config = load_config(site_file)
    assert isinstance(config, Config)
    assert config.site.name == "Test Towers" and config.site.time_zone == "Asia/Kolkata"
    assert sorted(config.tariffs) == ["ELEC", "MAINT", "WATER"]
    assert [m.meter_id for m in config.registry.meters] == ["E-1", "W-1", "E-2"]
    assert config.registry.accounts["A-2"].tariff_id is None
    assert config.groups is None


def test_a_single_tariff_file_may_be_a_string(tmp_path):
    site_file = write_site(tmp_path, tariffs='"t/elec.toml"', meters="meter_id,account_id,tariff_id\n"
                           "E-1,A-1,ELEC\n")
    assert sorted(load_config(site_file).tariffs) == ["ELEC", "MAINT"]


def test_groups_are_loaded_with_the_configuration_and_must_exist(tmp_path):
    site_file = write_site(tmp_path, extra='groups = "groups.csv"')
    with pytest.raises(ConfigError) as err:
        load_config(site_file)
    assert err.value.where == f"{site_file}[files].groups"
    (tmp_path / "groups.csv").write_text("group_id,account_id\n")
    groups = load_config(site_file).groups
    assert groups is not None and groups.groups == ()


def test_a_bad_groups_file_is_refused_at_load_naming_its_row(tmp_path):
    site_file = write_site(tmp_path, extra='groups = "groups.csv"')
    (tmp_path / "groups.csv").write_text("group_id,account_id\nG1,\n")
    with pytest.raises(InputError) as err:
        load_config(site_file)
    assert err.value.where == f"{tmp_path / 'groups.csv'} row 1"


def test_unknown_meter_tariff_names_the_meter_row_and_file(tmp_path):
    meters = METERS + "E-3,A-2,ELEC-OLD\n"
    site_file = write_site(tmp_path, meters=meters)
    with pytest.raises(TariffError) as err:
        load_config(site_file)
    assert err.value.where == f"{tmp_path / 'registry' / 'meters.csv'} row 4"
    assert "meter 'E-3' uses unknown tariff 'ELEC-OLD'" in err.value.message
    assert "ELEC, MAINT, WATER" in err.value.message
    assert "elec.toml" in err.value.message


def test_unknown_account_tariff_names_the_account(tmp_path):
    site_file = write_site(tmp_path, accounts=ACCOUNTS + "A-3,Flat 3,60,MAINT-X\n")
    with pytest.raises(TariffError) as err:
        load_config(site_file)
    assert err.value.where == f"{tmp_path / 'registry' / 'accounts.csv'} row 3"
    assert "account 'A-3' uses unknown tariff 'MAINT-X'" in err.value.message


def test_a_tariff_defined_in_two_files_is_an_error(tmp_path):
    site_file = write_site(tmp_path, tariffs='["t/elec.toml", "t/elec2.toml"]')
    (tmp_path / "t" / "elec2.toml").write_text(TARIFFS.split("[[tariff]]\nid = \"MAINT\"")[0])
    with pytest.raises(TariffError) as err:
        load_config(site_file)
    assert err.value.where == str(tmp_path / "t" / "elec2.toml")
    assert "'ELEC' is also defined in" in err.value.message


@pytest.mark.parametrize(
    ("files", "message", "where_suffix"),
    [
        ("", "missing [files] table", ""),
        ('[files]\nmeters = "m.csv"\naccounts = "a.csv"', "missing 'tariffs'", "[files]"),
        ('[files]\ntariffs = "t.toml"\naccounts = "a.csv"', "missing 'meters'", "[files]"),
        ('[files]\ntariffs = "t.toml"\nmeters = "m.csv"', "missing 'accounts'", "[files]"),
        ('[files]\ntariffs = []\nmeters = "m.csv"\naccounts = "a.csv"', "non-empty list",
         "[files].tariffs"),
        ('[files]\ntariffs = [1]\nmeters = "m.csv"\naccounts = "a.csv"', "non-empty list",
         "[files].tariffs"),
        ('[files]\ntariffs = "t.toml"\nmeters = 3\naccounts = "a.csv"', "must be a file name",
         "[files].meters"),
        ('[files]\ntarifs = "t.toml"\nmeters = "m.csv"\naccounts = "a.csv"', "unknown key",
         "[files]"),
        ('files = "x"', "must be a table", "[files]"),
    ],
)
def test_files_table_errors(tmp_path, files, message, where_suffix):
    site_file = tmp_path / "site.toml"
    site_file.write_text(f'{files}\n[site]\nname = "x"\n' if files.startswith("files") else
                         f'[site]\nname = "x"\n{files}\n')
    with pytest.raises(ConfigError) as err:
        load_config(site_file)
    assert message in err.value.message
    assert err.value.where == f"{site_file}{where_suffix}"


def test_missing_files_are_named(tmp_path):
    site_file = write_site(tmp_path)
    (tmp_path / "t" / "water.toml").unlink()
    with pytest.raises(TariffError) as err:
        load_config(site_file)
    assert err.value.where == str(tmp_path / "t" / "water.toml")
    site_file = write_site(tmp_path)
    (tmp_path / "registry" / "accounts.csv").unlink()
    with pytest.raises(InputError) as err:
        load_config(site_file)
    assert "accounts.csv" in err.value.where


def test_bad_site_section_and_bad_toml(tmp_path):
    site_file = write_site(tmp_path)
    site_file.write_text(site_file.read_text().replace('"Asia/Kolkata"', '"Mars/Olympus"'))
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_config(site_file)
    site_file.write_text("[site\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(site_file)
    with pytest.raises(ConfigError, match="cannot read site file"):
        load_config(tmp_path / "nope.toml")


def test_invalid_tariff_file_error_passes_through(tmp_path):
    site_file = write_site(tmp_path)
    (tmp_path / "t" / "water.toml").write_text('[[tariff]]\nid = "W"\neffective_from = 2025-01-01\n'
                                               "fixed_charge = -1\n")
    with pytest.raises(TariffError) as err:
        load_config(site_file)
    assert "water.toml" in err.value.where


def test_check_tariff_ids_alone(tmp_path):
    config = load_config(write_site(tmp_path))
    with pytest.raises(TariffError, match="'E-1' uses unknown tariff 'ELEC'"):
        check_tariff_ids(config.registry, {"WATER": config.tariffs["WATER"]})
