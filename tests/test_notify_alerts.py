"""Prepaid alerts through the outbox: written in the prepaid ledger's settle
transaction (the embedded SQLite file, and PostgreSQL with Redis balances and
the planner in a child process), one per operation, wallet and channel, under
a unique key, within consent; caught up after a recovery; never doubled."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from rating.billing.ledger_postgres import PostgresDuesLedger
from rating.billing.ledger_sqlite import SqliteDuesLedger
from rating.errors import ConfigError
from rating.model.site import Site
from rating.notify.alerts import Alerts, attach, catch_up, same_database
from rating.notify.directory import Consent, Contact, Directory
from rating.notify.outbox import Outbox
from rating.notify.rules import load_reminders
from rating.prepaid.records import Movement
from rating.prepaid.sitedocs import SiteDocs
from tests.prepaid_backends import ALL_PAIRS, make_backends
from tests.prepaid_site import AFTERNOON, NIGHT, Clock, write_site

pytest_plugins = ["tests.prepaid_backends"]
ROOT = Path(__file__).resolve().parents[1]
SITE = Site(name="Test Towers", time_zone="Asia/Kolkata")


@pytest.fixture(params=ALL_PAIRS[:2])  # embedded; redis+postgres+child
def backends(request, tmp_path):
    return make_backends(request, tmp_path)


@pytest.fixture
def site(tmp_path):
    site_file = write_site(tmp_path / "site", flats=3)
    site_file.write_text(site_file.read_text().replace("low_balance = 50\n", "low_balance = [500, 100]\n"))
    shutil.copytree(ROOT / "examples" / "reminders", tmp_path / "site", dirs_exist_ok=True)
    return site_file


def dues_of(backends):
    if backends.postgres is None:
        return SqliteDuesLedger(backends.folder / "data" / "ledger.db")
    return PostgresDuesLedger(backends.postgres.dsn, schema=backends.schema)


async def residents(outbox: Outbox) -> None:
    directory = Directory(outbox)
    for account, channel, kind, address in (("F0001", "email", "smtp", "rao@example.org"),
                                            ("F0001", "sms", "webhook", "98123 45678"),
                                            ("F0002", "sms", "webhook", "98123 45679")):
        await directory.set_contact("tt", Contact(account, channel, address, "Asha Rao", "hi"),
                                    channel_kind=kind, actor="desk")
    await directory.set_consent("tt", "F0001", "sms", Consent.IN, source="form", actor="desk")


def water(key, account, amount):
    kind = "topup" if amount > 0 else "adjust"
    return Movement(kind, key, account, "water", amount, "cash" if amount > 0 else "", "test")


def electricity(key, amount):
    return Movement("topup" if amount > 0 else "adjust", key, "F0001", "electricity", amount,
                    "cash" if amount > 0 else "", "test")


async def scenario(backends, site):
    dues = dues_of(backends)
    await dues.open()
    outbox = Outbox(dues)
    await outbox.open()
    await residents(outbox)
    service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
    await service.start()
    assert same_database(service.ledger, dues)
    alerts = Alerts(load_reminders(site.parent / "reminders.toml", SITE), SITE, "tt")
    attach(alerts, service.ledger)
    for movement in (water("t1", "F0001", 60_000), water("d1", "F0001", -15_000),  # 450: below 500
                     water("d2", "F0001", -40_000),  # 50: below 100
                     water("t2", "F0001", 70_000),  # 700: recovers both, told once (the higher)
                     water("x1", "F0002", -100),  # F0002: SMS never asked: no alert
                     water("x2", "F0000", -100),  # F0000: no contact
                     electricity("e1", 15_000),
                     electricity("e2", -18_000)):  # -30: low and cut off, told once
        await service.move(movement)
    await service.flush()
    events = [e async for e in service.events(stop_at_end=True)]
    rows = await outbox.rows("tt", limit=100)
    again = await catch_up(alerts, outbox.tables, list(range(1, 20)))  # every operation once more
    after = await outbox.rows("tt", limit=100)
    await service.close()
    await dues.close()
    return events, rows, again, after


def test_alerts_are_written_with_their_events_once_per_operation_wallet_and_channel(backends, site):
    events, rows, again, after = asyncio.run(scenario(backends, site))
    told = [(r.account_id, r.step, r.channel, r.fields.get("level", "-"), r.ref) for r in rows]
    ids = {e.cursor: e for e in events}
    assert [(a, s, c, level) for a, s, c, level, _ in told] == [
        ("F0001", "low_balance", "email", "INR 500.00"), ("F0001", "low_balance", "sms", "INR 500.00"),
        ("F0001", "low_balance", "email", "INR 100.00"), ("F0001", "low_balance", "sms", "INR 100.00"),
        ("F0001", "recovered", "email", "INR 500.00"), ("F0001", "recovered", "sms", "INR 500.00"),
        ("F0001", "cut_off", "email", "-"), ("F0001", "cut_off", "sms", "-")]
    for *_, ref in told:  # each names its event in the ledger
        assert ref.startswith("wallet-event:") and int(ref.split(":")[1]) in ids
    cut = rows[-2]
    assert (cut.template, cut.fields["wallet"], cut.fields["balance"]) == (
        "wallet_cut_off.en", "electricity", "INR -30.00")  # no Hindi template of it: the site's language
    assert rows[0].template == "wallet_low.hi" and rows[0].address == "rao@example.org"
    assert set(rows[0].fields) == {"unit", "wallet", "balance", "level", "name", "payment_link"}
    assert again == 8 and [r.key for r in after] == [r.key for r in rows]  # the same keys: nothing new


def test_an_operation_recovered_at_start_is_caught_up_with_the_same_keys(backends, site):
    """Settled with no hook (as recovery at start runs, before the reminders attach),
    then caught up: the alert appears once, and a second catch-up adds nothing."""
    async def go():
        dues = dues_of(backends)
        await dues.open()
        outbox = Outbox(dues)
        await outbox.open()
        await residents(outbox)
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(NIGHT))
        await service.start()
        await service.move(water("t1", "F0001", 60_000))
        await service.move(water("d1", "F0001", -59_000))
        await service.flush()
        before = await outbox.rows("tt")
        alerts = Alerts(load_reminders(site.parent / "reminders.toml", SITE), SITE, "tt")
        first = await catch_up(alerts, outbox.tables, [1, 2])
        second = await catch_up(alerts, outbox.tables, [1, 2])
        rows = await outbox.rows("tt")
        await service.close()
        await dues.close()
        return before, first, second, rows

    before, first, second, rows = asyncio.run(go())
    assert before == [] and first == second == 2  # the second writes its two rows' keys again: ignored
    assert [(r.step, r.channel, r.fields["level"]) for r in rows] == [
        ("low_balance", "email", "INR 100.00"), ("low_balance", "sms", "INR 100.00")]


@pytest.mark.parametrize("old, new, where, message", [
    ('low_balance = "wallet_low"', 'low_balance = "nothing"', "[prepaid_alerts].low_balance",
     "no template nothing.en.txt"),
    ('low_balance = "wallet_low"', 'lost = "wallet_low"', "[prepaid_alerts]", "unknown"),
    ('low_balance = "wallet_low"', 'low_balance = "wallet_low"\nchannels = ["fax"]',
     "[prepaid_alerts].channels", "no channel 'fax'"),
])
def test_a_bad_prepaid_alerts_table_is_refused_naming_the_key(tmp_path, old, new, where, message):
    folder = tmp_path / "r"
    shutil.copytree(ROOT / "examples" / "reminders", folder)
    path = folder / "reminders.toml"
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_reminders(path, SITE)
    assert info.value.where.endswith(where) and message in info.value.message


def test_an_alert_template_with_a_bill_merge_tag_is_refused_naming_its_file(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(ROOT / "examples" / "reminders", folder)
    (folder / "templates" / "wallet_low.zh.txt").write_text("Subject: x\n\n{{ amount_due }}\n")
    with pytest.raises(ConfigError) as info:
        load_reminders(folder / "reminders.toml", SITE)
    assert info.value.where.endswith("wallet_low.zh.txt") and "'amount_due'" in info.value.message
