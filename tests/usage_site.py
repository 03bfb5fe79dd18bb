"""A small site for the usage tests: the prepaid test site (tests/prepaid_site.py)
with parking and facility wallets, a gate account, and a usage file beside it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from rating.prepaid.ledger.sqlite import SqliteLedger
from rating.prepaid.service import PrepaidService
from rating.prepaid.sitedocs import SiteDocs
from rating.prepaid.store.memory import MemoryStore
from tests.prepaid_site import AFTERNOON, Clock, write_site

WALLETS_TOML = """
[prepaid.wallets.parking]
low_balance = 200

[prepaid.wallets.facilities]
low_balance = 100
"""

USAGE_TOML = """\
[site]
time_zone = "Asia/Kolkata"
rounding = "half_up"

[parking]
plates = "plates.csv"
visitor_account = "GATE"

[parking.tariffs.resident]
free_minutes = 30
step_minutes = 60
price = 20
daily_cap = 100
lost_ticket = 300
bands = [{ span = "22:00-24:00", price = 5 }, { span = "00:00-06:00", price = 5 }]

[parking.tariffs.visitor]
step_minutes = 1
price = 0.75
lost_ticket = 500

[parking.passes.monthly]
price = 1500
days = 30
renew_days_before = 2
warn_days_before = 5

[facilities.gym]
price = 50
wallet = "facilities"

[facilities.ev]
price = 12.5
per = "kwh"
wallet = "facilities"
"""

PLATES_CSV = """\
plate,kind,account_id,tariff_id
KA01AB1234,resident,F0001,resident
KA01CD5678,resident,F0001,resident
KA05EF0002,resident,F0002,resident
MH12XY0001,visitor,F0003,visitor
"""


def write_usage_site(folder: Path) -> tuple[Path, Path]:
    """(site file, usage file) in `folder`."""
    site = write_site(folder, flats=6)
    with open(site, "a", encoding="utf-8") as f:
        f.write(WALLETS_TOML)
    with open(folder / "accounts.csv", "a", encoding="utf-8") as f:
        f.write("GATE,Gate takings,0,MAINT\n")
    (folder / "usage.toml").write_text(USAGE_TOML, encoding="utf-8")
    (folder / "plates.csv").write_text(PLATES_CSV, encoding="utf-8")
    return site, folder / "usage.toml"


def embedded_service(folder: Path, site: Path) -> PrepaidService:
    return PrepaidService(MemoryStore(), SqliteLedger(folder / "ledger.db"),
                          docs=SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))


def events(*rows: tuple[str, str, str]) -> pa.Table:
    """(plate, local Kolkata time "YYYY-MM-DD HH:MM", event) rows as an events table (UTC instants)."""
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    instants = [dt.datetime.fromisoformat(t).replace(tzinfo=ist).astimezone(dt.timezone.utc)
                for _, t, _ in rows]
    return pa.table({"plate": [r[0] for r in rows], "ts": pa.array(instants, pa.timestamp("us", tz="UTC")),
                     "event": [r[2] for r in rows]})
