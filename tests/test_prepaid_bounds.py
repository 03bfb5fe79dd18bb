"""The prepaid service's bounds: what happens at each (a clear error before
anything happens, never unbounded growth), the old names of server settings
read as aliases, and the order of a stream's batches."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from rating.cli.commands import build_parser
from rating.errors import ConfigError
from rating.prepaid import errors
from rating.prepaid.ledger.sqlite import SqliteLedger
from rating.prepaid.records import Movement
from rating.prepaid.service import Limits, PrepaidService
from rating.prepaid.sitedocs import SiteDocs
from rating.prepaid.store.memory import MemoryStore
from rating.server.settings import ALIASES, Settings, load_settings
from rating.server.status import code_of
from tests.prepaid_site import AFTERNOON, Clock, batches, readings, write_site


class GatedLedger:
    """A ledger whose commits (or settles) wait for a gate, as a slow database would."""

    def __init__(self, inner, *, commits: asyncio.Event | None = None, settles: asyncio.Event | None = None):
        self.inner, self.commits, self.settles = inner, commits, settles
        self.name = inner.name

    async def commit(self, op):
        if self.commits is not None:
            await self.commits.wait()
        return await self.inner.commit(op)

    async def settle(self, items):
        if self.settles is not None:
            await self.settles.wait()
        return await self.inner.settle(items)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def site(tmp_path):
    return write_site(tmp_path / "site", flats=6)


def service_on(tmp_path, site, ledger_wrap, **limits) -> PrepaidService:
    ledger = ledger_wrap(SqliteLedger(tmp_path / "ledger.db"))
    return PrepaidService(MemoryStore(), ledger, docs=SiteDocs.from_site_file(site), clock=Clock(AFTERNOON),
                          limits=Limits(**limits))


async def started_gated(tmp_path, site, gated: str) -> tuple[PrepaidService, asyncio.Event]:
    """A started service holding at most 2 pending operations, whose ledger
    `gated` ("commits" or "settles") waits for the returned gate."""
    gate = asyncio.Event()
    service = service_on(tmp_path, site, lambda inner: GatedLedger(inner, **{gated: gate}), ops_pending_max=2)
    await service.start()
    return service, gate


def topup(key: str, amount_minor: int = 100) -> Movement:
    return Movement("topup", key, "F0001", "water", amount_minor, "cash")


def test_an_operation_past_ops_pending_max_is_refused_before_anything_happens(tmp_path, site):
    async def go():
        service, gate = await started_gated(tmp_path, site, "commits")
        held = [asyncio.ensure_future(service.move(topup(f"t{i}"))) for i in range(2)]
        await asyncio.sleep(0.05)  # both wait in their commit
        with pytest.raises(errors.TooLarge) as refused_move:
            await service.move(topup("t2"))
        with pytest.raises(errors.TooLarge) as refused_batch:
            await service.deduct("b0", readings(6, 2))
        gate.set()
        done = await asyncio.gather(*held)
        await service.flush()
        after = await service.move(topup("t2"))  # room again once settled
        counts = await service.ledger.counts()
        pending = service.core.in_flight, len(service.core.unsettled), len(service.core.keys)
        await service.close()
        return refused_move.value, refused_batch.value, done, after, counts, pending

    refused_move, refused_batch, done, after, counts, pending = asyncio.run(go())
    for refused in (refused_move, refused_batch):
        assert refused.metadata["limit"] == "ops_pending_max" and "ops_pending_max = 2" in refused.message
        assert code_of(refused) == grpc.StatusCode.RESOURCE_EXHAUSTED and refused.reason == "LIMIT_EXCEEDED"
    assert [r.balance_minor for r in done] == [100, 200] and after.balance_minor == 300
    assert counts["ops"] == 3  # nothing of the refused ones reached the ledger
    assert pending == (0, 0, 0)  # every count, lock and waiter went with its operation


def test_operations_answered_but_not_settled_still_count_against_the_bound(tmp_path, site):
    async def go():
        service, gate = await started_gated(tmp_path, site, "settles")
        answered = [await service.move(topup(f"t{i}")) for i in range(2)]  # answered, settling waits
        with pytest.raises(errors.TooLarge):
            await service.move(topup("t2"))
        queued = service.applier.settle_queue.qsize() + len(service.core.unsettled)
        gate.set()
        await service.flush()
        after = await service.move(topup("t2"))
        await service.close()
        return answered, queued, after

    answered, queued, after = asyncio.run(go())
    assert [r.balance_minor for r in answered] == [100, 200] and after.balance_minor == 300
    assert 2 <= queued <= 4  # both unsettled, queued or being settled: never more than the bound allows


def test_a_stream_batch_after_a_refused_one_is_refused_and_the_order_holds(tmp_path, site):
    table = readings(6, 8)
    parts = batches(table, 24)

    async def go():
        service = service_on(tmp_path, site, lambda inner: inner)
        await service.start()
        stream = service.open_stream()
        first = stream.start("b0", parts[0])
        bad = stream.start("", parts[1])  # an empty batch id: refused before rating
        after_bad = stream.start("b2", parts[2])
        outcomes = []
        for started in (first, bad, after_bad):
            try:
                outcomes.append(await started.result)
            except errors.PrepaidError as exc:
                outcomes.append(exc)
        rated = [await s.rated for s in (first, bad, after_bad)]
        counts = await service.ledger.counts()
        await service.close()
        return outcomes, rated, counts

    outcomes, rated, counts = asyncio.run(go())
    assert outcomes[0].batch_id == "b0"
    assert isinstance(outcomes[1], errors.InvalidArgument)
    assert isinstance(outcomes[2], errors.Unavailable)
    assert "earlier batch of this stream" in outcomes[2].message
    assert rated == [True, False, False] and counts["ops"] == 1


def test_old_setting_names_are_read_as_aliases_from_file_environment_and_flags(tmp_path):
    config = tmp_path / "server.toml"
    config.write_text("[server]\nmax_message_bytes = 1000\nstream_window = 3\n")
    settings = load_settings(file=config, env={"RATING_MAX_CONCURRENT_RPCS": "7",
                                               "RATING_MIN_PING_INTERVAL_S": "2.5"},
                             flags={"max_connection_idle_s": 9.0})
    assert (settings.message_bytes_max, settings.stream_window_batches, settings.concurrent_rpcs_max,
            settings.ping_interval_min_s, settings.connection_idle_max_s) == (1000, 3, 7, 2.5, 9.0)
    assert set(ALIASES.values()) <= {f for f in Settings.__dataclass_fields__}
    assert Settings(max_message_bytes=5, stream_window=2).message_bytes_max == 5  # callers in Python too
    parser = build_parser()
    for flag in ("--max-message-bytes", "--message-bytes-max"):
        args = parser.parse_args(["serve", flag, "2048"])
        assert args.message_bytes_max == 2048
    args = parser.parse_args(["serve", "--max-concurrent-rpcs", "5", "--ops-pending-max", "9"])
    assert (args.concurrent_rpcs_max, args.ops_pending_max) == (5, 9)


@pytest.mark.parametrize("where", ["file", "environment", "flags"])
def test_a_setting_given_by_its_old_and_new_name_in_one_place_is_an_error(tmp_path, where):
    config = tmp_path / "server.toml"
    config.write_text("[server]\nmax_message_bytes = 1000\nmessage_bytes_max = 2000\n")
    given = {"file": dict(file=config, env={}),
             "environment": dict(env={"RATING_STREAM_WINDOW": "3", "RATING_STREAM_WINDOW_BATCHES": "4"}),
             "flags": dict(env={}, flags={"max_concurrent_rpcs": 3, "concurrent_rpcs_max": 4})}[where]
    with pytest.raises(ConfigError, match="given twice, also by its old name"):
        load_settings(**given)


def test_ops_pending_max_must_be_at_least_one():
    with pytest.raises(ConfigError, match="ops_pending_max must be at least 1"):
        Settings(ops_pending_max=0).check()
