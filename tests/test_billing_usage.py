"""The demo society rated by the engine and billed: every account gets a bill, and
the bills carry every rated line, to the paisa."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from rating import load_config
from rating.billing.compute import draft_bill
from rating.billing.config import billing_path, load_billing
from rating.billing.documents import Cycle, LineKind, Unit
from rating.billing.usage import usage_by_account
from rating.cli.demo import generate_demo
from rating.engine import rate
from rating.fixedpoint import decimal_units
from rating.inputs.tables import read_table

MAY = Cycle("GM", dt.date(2025, 5, 1), dt.date(2025, 5, 31), dt.date(2025, 6, 1), dt.date(2025, 6, 15))


def test_the_demo_society_bills_every_account_with_all_its_rated_usage(tmp_path):
    society = generate_demo(tmp_path, towers=2, floors=2, flats_per_floor=2)
    config = load_config(society.site_file)
    result = rate(read_table(society.readings_file), config=config, now=dt.datetime(2025, 7, 1))
    usage = usage_by_account(result.charges, config.site)
    billing = load_billing(billing_path(society.site_file), config.site)
    bills = []
    for account in config.registry.accounts.values():
        meters = tuple((m.meter_id, m.tariff_id) for m in config.registry.meters
                       if m.account_id == account.account_id)
        unit = Unit(account.account_id, owner=account.name, area=account.area, meters=meters)
        bills.append(draft_bill(MAY, unit, billing, usage.get(account.account_id, [])))
    assert len(bills) == len(config.registry.accounts) == 9
    flats = [b for b in bills if b.account_id != "GMCHS"]
    heads = {"maintenance", "sinking_fund", "repair_fund", "electricity", "water"}
    assert all(heads <= {li.head for li in b.lines} for b in flats)
    postpaid = result.charges.filter(pc.invert(pc.is_in(result.charges["tariff_id"],
                                                        value_set=pa.array(sorted(billing.unbilled_tariffs)))))
    rated = int(decimal_units(postpaid["amount"], 2)[0].sum())
    billed = sum(li.amount_minor for b in bills for li in b.lines
                 if li.head in ("electricity", "water", "common_supply", "common_electricity"))
    assert billed == rated
    assert all(b.charges_minor % 100 == 0 for b in bills)  # rounded off to the rupee
    assert all(li.kind is not LineKind.ARREARS for b in bills for li in b.lines)
