"""Warning levels through the prepaid service, on the embedded pair and on
Redis + PostgreSQL (the planner in a child process), as the contract tests
run them: each level warns once until a top-up lifts the balance above it,
`recovered` when it does, the level on every event, kept across a restart."""

from __future__ import annotations

import asyncio

import pytest

from rating.prepaid.records import Movement
from rating.prepaid.sitedocs import SiteDocs
from rating.prepaid.wallets import EventType, Status
from tests.prepaid_backends import ALL_PAIRS, make_backends
from tests.prepaid_site import AFTERNOON, Clock, write_site

pytest_plugins = ["tests.prepaid_backends"]
E = EventType


@pytest.fixture(params=ALL_PAIRS[:2])  # embedded; redis+postgres+child
def backends(request, tmp_path):
    return make_backends(request, tmp_path)


@pytest.fixture
def site(tmp_path):
    site_file = write_site(tmp_path / "site", flats=2)
    text = site_file.read_text().replace("low_balance = 50\n", "low_balance = [100, 500]\n")
    site_file.write_text(text)
    return site_file


def move(kind, key, amount):
    return Movement(kind if kind != "debit" else "adjust", key, "F0001", "water",
                    amount if kind != "debit" else -amount, "cash" if kind == "topup" else "", "test")


FIRST = [("topup", "t1", 60_000), ("debit", "d1", 15_000), ("debit", "d2", 15_000), ("debit", "d3", 22_000),
         ("topup", "t2", 1_000), ("topup", "t3", 11_000), ("debit", "d4", 15_000)]
AFTER_RESTART = [("debit", "d5", 1_000), ("topup", "t4", 65_000)]


def test_two_levels_warn_once_each_recover_on_the_way_up_and_survive_a_restart(backends, site):
    async def run(movements, docs):
        service = backends.service(docs, clock=Clock(AFTERNOON))
        await service.start()
        results = [await service.move(move(*m)) for m in movements]
        replay = await service.move(move(*movements[-1]))  # a retry: its first result, no new event
        await service.flush()
        events = [e async for e in service.events(stop_at_end=True)]
        await service.close()
        return results, replay, events

    first, replay, _ = asyncio.run(run(FIRST, SiteDocs.from_site_file(site)))
    second, _, events = asyncio.run(run(AFTER_RESTART, None))
    assert [(r.balance_minor, r.status) for r in first] == [
        (60_000, Status.OK), (45_000, Status.LOW), (30_000, Status.LOW), (8_000, Status.LOW),
        (9_000, Status.LOW), (20_000, Status.LOW), (5_000, Status.LOW)]
    assert replay.replayed and replay.events == first[-1].events
    assert [(e.type, e.level_minor) for r in first for e in r.events] == [
        (E.LOW_BALANCE, 50_000), (E.LOW_BALANCE, 10_000), (E.RECOVERED, 10_000), (E.LOW_BALANCE, 10_000)]
    # after the restart the lower level is still in alarm: a further debit warns nothing
    assert [(r.balance_minor, [(e.type, e.level_minor) for e in r.events]) for r in second] == [
        (4_000, []), (69_000, [(E.RECOVERED, 10_000), (E.RECOVERED, 50_000)])]
    assert [(e.type, e.level_minor, e.balance_minor, e.cause) for e in events] == [
        (E.LOW_BALANCE, 50_000, 45_000, "d1"), (E.LOW_BALANCE, 10_000, 8_000, "d3"),
        (E.RECOVERED, 10_000, 20_000, "t3"), (E.LOW_BALANCE, 10_000, 5_000, "d4"),
        (E.RECOVERED, 10_000, 69_000, "t4"), (E.RECOVERED, 50_000, 69_000, "t4")]
