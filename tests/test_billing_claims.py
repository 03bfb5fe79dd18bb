"""Prepaid or postpaid per head (rating.billing.claims), and registry dates in the bill run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from rating.billing.compute import draft_bill
from rating.billing.inputs import load_site_billing, run_cycle
from rating.errors import ConfigError

SITE = """[site]
name = "Claims Court"
time_zone = "Asia/Kolkata"
{prepaid}
[files]
tariffs = "tariffs.toml"
meters = "meters.csv"
accounts = "accounts.csv"
"""
TARIFFS = """
[[tariff]]
id = "ELEC"
effective_from = 2025-01-01
[tariff.energy]
slabs = [{ price = 8 }]

[[tariff]]
id = "DG"
effective_from = 2025-01-01
[tariff.energy]
slabs = [{ price = 20 }]

[[tariff]]
id = "MAINT"
effective_from = 2025-01-01
area_charge = 3
fees = [{ name = "sinking_fund", amount = 400 }]
"""
METERS = "meter_id,account_id,tariff_id,wallet\nE-1,A-1,ELEC,electricity\nD-1,A-1,DG,backup\n"
ACCOUNTS = "account_id,area,tariff_id,active_from\nA-1,70,MAINT,2025-05-22\n"


def site(folder: Path, billing: str, prepaid: str = "") -> Path:
    (folder / "site.toml").write_text(SITE.format(prepaid=prepaid))
    (folder / "tariffs.toml").write_text(TARIFFS)
    (folder / "meters.csv").write_text(METERS)
    (folder / "accounts.csv").write_text(ACCOUNTS)
    (folder / "billing.toml").write_text(billing)
    return folder / "site.toml"


def refused(folder: Path, billing: str, prepaid: str = "") -> ConfigError:
    with pytest.raises(ConfigError) as error:
        load_site_billing(site(folder, billing, prepaid))
    return error.value


def test_a_wallet_of_a_prepaid_meter_billed_as_a_head_is_refused(tmp_path):
    error = refused(tmp_path, '[billing]\nprepaid_tariffs = ["ELEC", "MAINT"]\n'
                              '[heads.electricity]\nkind = "metered"\ntariffs = ["DG"]\n')
    assert error.where == f"{tmp_path / 'billing.toml'}[heads.electricity]"
    assert f"{tmp_path / 'meters.csv'} row 1 (meter 'E-1') column wallet" in error.message
    assert "a head is prepaid or postpaid, never both" in error.message


def test_maintenance_debited_from_the_account_lines_wallet_and_billed_is_refused(tmp_path):
    error = refused(tmp_path, '[billing]\nprepaid_tariffs = ["MAINT"]\nrated_only_tariffs = ["ELEC", "DG"]\n'
                              '[heads.upkeep]\nkind = "area"\nrate = 3\n',
                    prepaid='[prepaid]\naccount_lines_wallet = "upkeep"\n')
    assert error.where.endswith("billing.toml[heads.upkeep]")
    assert f"{tmp_path / 'site.toml'}[prepaid].account_lines_wallet (tariff 'MAINT'" in error.message


def test_a_fee_of_a_prepaid_tariff_billed_as_a_head_is_refused(tmp_path):
    error = refused(tmp_path, '[billing]\nprepaid_tariffs = ["MAINT"]\nrated_only_tariffs = ["ELEC", "DG"]\n'
                              '[heads.sinking_fund]\nkind = "fixed"\nrate = 400\n')
    assert error.where.endswith("billing.toml[heads.sinking_fund]")
    assert "tariff MAINT (2025-01-01) fees" in error.message


def test_an_unknown_prepaid_tariff_is_refused(tmp_path):
    error = refused(tmp_path, '[billing]\nprepaid_tariffs = ["MAINTENANCE"]\n')
    assert error.where.endswith("billing.toml[billing].prepaid_tariffs")
    assert "unknown tariff 'MAINTENANCE'" in error.message


def test_a_tariff_both_prepaid_and_rated_only_is_refused(tmp_path):
    error = refused(tmp_path, '[billing]\nprepaid_tariffs = ["MAINT"]\nrated_only_tariffs = ["MAINT"]\n')
    assert error.where.endswith("billing.toml[billing].rated_only_tariffs[0]")


def test_each_head_on_one_side_loads_and_the_unit_is_billed_from_its_first_day(tmp_path):
    society = load_site_billing(site(tmp_path, '[billing]\nprepaid_tariffs = ["ELEC"]\n'
                                               'rated_only_tariffs = ["MAINT"]\n'
                                               '[heads.maintenance]\nkind = "area"\nrate = 3\n'
                                               '[heads.backup]\nkind = "metered"\ntariffs = ["DG"]\n'))
    (unit,) = society.units()
    assert unit.billed_from == dt.date(2025, 5, 22)
    bill = draft_bill(run_cycle(society.site_id, "2025-05", society.billing), unit, society.billing)
    (maintenance,) = [line for line in bill.lines if line.head == "maintenance"]
    assert maintenance.amount_minor == 6774  # 70 m² x 3 x 10/31 days = 67.741..., rounded once
    assert ("days", "10 of 31") in maintenance.basis


def test_a_group_split_on_the_bills_whose_source_meter_is_prepaid_is_refused(tmp_path):
    """The common meter's cost would be debited from its wallet and then billed to
    the members as their shares: collected twice."""
    path = site(tmp_path, '[billing]\nprepaid_tariffs = ["DG"]\nrated_only_tariffs = ["MAINT"]\n'
                          '[heads.electricity]\nkind = "metered"\ntariffs = ["ELEC"]\n'
                          '[heads.backup_share]\nkind = "share"\ngroups = ["backup"]\n')
    path.write_text(path.read_text().replace('[files]\n', '[files]\ngroups = "groups.csv"\n'))
    (tmp_path / "groups.csv").write_text("group_id,account_id,method,basis,common_meters\n"
                                         "backup,A-1,equal,cost,D-1\n")
    with pytest.raises(ConfigError) as error:
        load_site_billing(path)
    assert error.value.where == f"{tmp_path / 'billing.toml'}[heads.backup_share]"
    assert "meter 'D-1' is the source of group 'backup'" in error.value.message
    assert "'DG' is in [billing].prepaid_tariffs" in error.value.message
