"""The usage path through the prepaid service on its embedded backends (an
in-process store, an SQLite ledger): facility uses, parking sessions, passes
and instalments, with replays and refusals."""

from __future__ import annotations

import asyncio
import datetime as dt

import pyarrow as pa
import pytest

from rating.prepaid import errors
from rating.prepaid.records import Movement
from rating.usage.facilities import Use
from rating.usage.instalments import plans_from_toml, schedule, wallet_movements
from rating.usage.passes import Subscription
from rating.usage.service import UsageService
from rating.usage.settings import load_usage_file
from tests.usage_site import embedded_service, events, write_usage_site


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def site(tmp_path):
    return write_usage_site(tmp_path / "site")


async def _started(tmp_path, site, subscriptions=()):
    site_file, usage_file = site
    prepaid = embedded_service(tmp_path, site_file)
    await prepaid.start()
    settings = load_usage_file(usage_file)
    subs = [Subscription(a, settings.passes["monthly"], start) for a, start in subscriptions]
    return prepaid, UsageService(prepaid, settings, subs)


async def _topup(prepaid, account, wallet, amount_minor, key):
    return await prepaid.move(Movement("topup", key, account, wallet, amount_minor, method="cash"))


async def _wallet(prepaid, account, wallet):
    return {s.wallet: s.balance_minor for s, _ in await prepaid.balance(account)}.get(wallet, 0)


def test_a_use_debits_once_per_key_and_a_reused_key_with_another_use_is_refused(tmp_path, site):
    async def body():
        prepaid, usage = await _started(tmp_path, site)
        try:
            await _topup(prepaid, "F0001", "facilities", 10000, "T1")
            first = await usage.use(Use("gym-77", "F0001", "gym", source="card", reference="C-1"))
            again = await usage.use(Use("gym-77", "F0001", "gym", source="card", reference="C-1"))
            assert (first.change_minor, first.balance_minor, again.replayed) == (-5000, 5000, True)
            assert [e.type.name for e in first.events] == ["LOW_BALANCE"]  # below 100.00: the wallet's rule
            with pytest.raises(errors.IdempotencyConflict):
                await usage.use(Use("gym-77", "F0002", "gym", source="card", reference="C-1"))
            with pytest.raises(errors.IdempotencyConflict):
                await usage.use(Use("gym-77", "F0001", "ev", quantity="2.5", source="qr"))
            ev = await usage.use(Use("ev-1", "F0001", "ev", quantity="3.333", source="qr", reference="QR9"))
            assert ev.change_minor == -4166  # 12.5 x 3.333 = 41.6625, half up once
            assert await _wallet(prepaid, "F0001", "facilities") == 5000 - 4166
        finally:
            await prepaid.close()
    run(body())


def test_a_use_the_wallet_cannot_pay_is_refused_and_changes_nothing(tmp_path, site):
    async def body():
        prepaid, usage = await _started(tmp_path, site)
        try:
            await _topup(prepaid, "F0001", "facilities", 4999, "T1")
            with pytest.raises(errors.InsufficientBalance):
                await usage.use(Use("gym-1", "F0001", "gym"))
            assert await _wallet(prepaid, "F0001", "facilities") == 4999
            counts = await prepaid.ledger.counts()
            await _topup(prepaid, "F0001", "facilities", 1, "T2")  # the key was not used up by the refusal
            assert (await usage.use(Use("gym-1", "F0001", "gym"))).balance_minor == 0
            assert (await prepaid.ledger.counts())["ops"] == counts["ops"] + 2
        finally:
            await prepaid.close()
    run(body())


@pytest.mark.parametrize(("use", "field"), [
    (Use("k", "F0001", "sauna"), "facility"),
    (Use("k", "F0001", "gym", quantity="1.5"), "quantity"),
    (Use("k", "F0001", "ev", quantity="-1"), "quantity"),
    (Use("k", "F0001", "ev", quantity="NaN"), "quantity"),
    (Use("k", "F0001", "ev", quantity="1e9"), "quantity"),
    (Use("k", "F0001", "ev", quantity="0.0001"), "quantity"),
    (Use("k", "F0001", "gym", source="telepathy"), "source"),
])
def test_a_malformed_use_is_refused_naming_its_field(tmp_path, site, use, field):
    async def body():
        prepaid, usage = await _started(tmp_path, site)
        try:
            await _topup(prepaid, "F0001", "facilities", 10**6, "T1")
            with pytest.raises(errors.InvalidArgument) as caught:
                await usage.use(use)
            assert caught.value.metadata["field"] == field
            assert await _wallet(prepaid, "F0001", "facilities") == 10**6
        finally:
            await prepaid.close()
    run(body())


def test_an_unknown_account_is_refused(tmp_path, site):
    async def body():
        prepaid, usage = await _started(tmp_path, site)
        try:
            with pytest.raises(errors.NotFound):
                await usage.use(Use("k", "F9999", "gym"))
        finally:
            await prepaid.close()
    run(body())


def test_parking_debits_residents_records_visitors_at_the_gate_and_a_replay_moves_nothing(tmp_path, site):
    batch = events(("KA01AB1234", "2026-05-04 08:00", "entry"), ("MH12XY0001", "2026-05-04 09:00", "entry"),
                   ("KA01AB1234", "2026-05-04 10:31", "exit"), ("MH12XY0001", "2026-05-04 09:45", "exit"),
                   ("ZZ00ZZ0000", "2026-05-04 09:50", "exit"), ("KA05EF0002", "2026-05-04 11:00", "exit"),
                   ("KA05EF0002", "2026-05-04 12:00", "lost_ticket"))

    async def body():
        prepaid, usage = await _started(tmp_path, site)
        try:
            settled = await usage.park(batch)
            assert [(m.account_id, m.wallet, m.change_minor) for m in settled.movements] == [
                ("F0001", "parking", -6000), ("F0002", "parking", -30000), ("GATE", "parking", 3375)]
            assert sorted(settled.rated.anomalies.column("code").to_pylist()) == \
                ["exit_without_entry", "unknown_plate"]
            again = await usage.park(batch)  # the same events: out of order, or orphans of the last instant
            assert again.rated.anomalies.num_rows == 6 and all(m.replayed for m in again.movements)
            assert await _wallet(prepaid, "F0002", "parking") == -30000
            fresh = UsageService(prepaid, usage.settings)  # a restarted server: nothing carried
            replayed = await fresh.park(batch)
            assert all(m.replayed for m in replayed.movements) and len(replayed.movements) == 3
            assert await _wallet(prepaid, "F0001", "parking") == -6000
        finally:
            await prepaid.close()
    run(body())


def test_a_pass_period_bought_from_the_wallet_covers_its_sessions_and_renews_before_it_ends(tmp_path, site):
    async def body():
        prepaid, usage = await _started(tmp_path, site, [("F0001", dt.date(2026, 5, 1))])
        try:
            await _topup(prepaid, "F0001", "parking", 300000, "T1")
            first = await usage.renew_passes(dt.date(2026, 5, 3))
            assert [(r.first_day, r.outcome) for r in first] == [(dt.date(2026, 5, 1), "bought")]
            again = await usage.renew_passes(dt.date(2026, 5, 4))
            assert [r.outcome for r in again] == ["already_bought"]
            stay = events(("KA01CD5678", "2026-05-04 08:00", "entry"),
                          ("KA01CD5678", "2026-05-04 20:00", "exit"))
            settled = await usage.park(stay)
            assert (settled.covered, settled.movements) == (1, [])
            await _topup(prepaid, "F0001", "parking", 1, "T2")
            late = await usage.renew_passes(dt.date(2026, 5, 29))  # 2 days before 31 May: renew
            assert [(r.first_day, r.outcome) for r in late] == [(dt.date(2026, 5, 1), "already_bought"),
                                                                (dt.date(2026, 5, 31), "bought")]
            assert await _wallet(prepaid, "F0001", "parking") == 300001 - 2 * 150000
        finally:
            await prepaid.close()
    run(body())


def test_a_wallet_that_cannot_pay_the_next_pass_is_warned_first_then_refused(tmp_path, site):
    async def body():
        prepaid, usage = await _started(tmp_path, site, [("F0002", dt.date(2026, 5, 1))])
        try:
            await _topup(prepaid, "F0002", "parking", 160000, "T1")
            await usage.renew_passes(dt.date(2026, 5, 1))
            warned = await usage.renew_passes(dt.date(2026, 5, 27))  # 4 days left: within warn_days_before
            assert [r.outcome for r in warned] == ["already_bought", "warned"]
            refused = await usage.renew_passes(dt.date(2026, 5, 30))
            assert [(r.outcome, r.balance_minor) for r in refused] == [("already_bought", 10000),
                                                                       ("refused", 10000)]
            assert await _wallet(prepaid, "F0002", "parking") == 10000
        finally:
            await prepaid.close()
    run(body())


PLANS = """\
[plans.lift]
fund = "lift_replacement"
title = "Lift fund"
instalments = 3
first_due = 2026-04-10
every_months = 3
wallet = "special_maintenance_fund"

[plans.lift.accounts]
F0001 = 100.00
F0002 = 50.00
"""


def test_instalments_are_paid_once_each_and_one_the_wallet_cannot_pay_stays_due(tmp_path, site):
    async def body():
        prepaid, usage = await _started(tmp_path, site)
        try:
            plan = plans_from_toml(PLANS, usage.settings.site, where="plans.toml")[0]
            table = schedule([plan])
            await _topup(prepaid, "F0001", "special_maintenance_fund", 10000, "T1")
            due = wallet_movements(plan, table, dt.date(2026, 7, 10))
            paid = await usage.pay_instalments(due)
            assert [(m.account_id, m.requested_minor, r is not None) for m, r in paid] == [
                ("F0001", 3334, True), ("F0001", 3333, True), ("F0002", 1667, False), ("F0002", 1667, False)]
            again = await usage.pay_instalments(due)
            assert [r.replayed for _, r in again if r is not None] == [True, True]
            assert await _wallet(prepaid, "F0001", "special_maintenance_fund") == 10000 - 6667
            keys = [m.key for m in due]
            assert await usage.paid_keys(keys) == set(keys[:2])
        finally:
            await prepaid.close()
    run(body())


def test_a_session_rated_again_at_another_price_is_a_conflict_and_moves_nothing(tmp_path, site):
    import dataclasses

    batch = events(("KA05EF0002", "2026-05-04 08:00", "entry"), ("KA05EF0002", "2026-05-04 11:00", "exit"))

    async def body():
        prepaid, usage = await _started(tmp_path, site)
        try:
            first = await usage.park(batch)
            assert [m.change_minor for m in first.movements] == [-6000]
            tariffs = usage.settings.tariffs
            dearer = dataclasses.replace(tariffs["resident"], price=tariffs["resident"].price * 2)
            settings = dataclasses.replace(usage.settings, tariffs={**tariffs, "resident": dearer})
            restarted = UsageService(prepaid, settings)
            with pytest.raises(errors.IdempotencyConflict):
                await restarted.park(batch)
            assert restarted.rater is not None and len(restarted.rater.carried.plates) == 0  # put back
            assert await _wallet(prepaid, "F0002", "parking") == -6000
        finally:
            await prepaid.close()
    run(body())


def test_the_stays_still_open_survive_a_restart_of_the_service(tmp_path, site):
    state = tmp_path / "data" / "parking_stays.arrow"

    async def body():
        prepaid, usage = await _started(tmp_path, site)
        try:
            first = UsageService(prepaid, usage.settings, state_path=state)
            await first.park(events(("KA05EF0002", "2026-05-04 08:00", "entry"),
                                    ("KA01AB1234", "2026-05-04 08:10", "entry"),
                                    ("KA01AB1234", "2026-05-04 09:00", "exit")))
            again = UsageService(prepaid, usage.settings, state_path=state)  # a restarted server
            settled = await again.park(events(("KA05EF0002", "2026-05-04 11:00", "exit"),
                                              ("KA01AB1234", "2026-05-04 08:30", "entry")))
            assert [(m.account_id, m.change_minor) for m in settled.movements] == [("F0002", -6000)]
            assert settled.rated.anomalies.column("code").to_pylist() == ["out_of_order"]
        finally:
            await prepaid.close()
    run(body())


def test_a_file_that_is_not_parking_stays_is_refused_naming_it(tmp_path, site):
    from rating.errors import InputError
    from rating.usage.parking_state import load_carried

    path = tmp_path / "stays.arrow"
    table = events(("KA05EF0002", "2026-05-04 08:00", "entry"))
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    with pytest.raises(InputError, match="not a file of parking stays"):
        load_carried(path, load_usage_file(site[1]).need_plates())
