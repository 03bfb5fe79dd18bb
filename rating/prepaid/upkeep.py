"""Upkeep: what keeps the balance store the ledger's mirror and the ledger in
shape, apart from any caller: recovery of committed, unsettled operations at
start, the store's marker check and rebuild (at start, or in the background
when a running store lost its marker), the sweep of deferred cut-offs, and the
ledger's periodic `maintain`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from rating.prepaid import errors
from rating.prepaid.applying import Applier, result_of
from rating.prepaid.core import Core
from rating.prepaid.ledger.base import NewOp, OpRow, Settlement
from rating.prepaid.records import Entries, Event, WalletState
from rating.prepaid.refund_approvals import DECISION_KINDS, decision_settlement
from rating.prepaid.store.base import StoreMismatch, StoreUnavailable
from rating.prepaid.wallets import status_after_rebuild

log = logging.getLogger("rating.prepaid")


class Upkeep:
    def __init__(self, core: Core, applier: Applier, *, rebuild_on_start: bool):
        self.core, self.applier = core, applier
        self._rebuild_on_start = rebuild_on_start  # else the store's marker decides
        self.rebuilding: asyncio.Task | None = None
        self._foreign_logged = False
        core.on_store_mismatch = self._store_mismatch
        # operations recovery settled: their events are recorded, maybe before anything that
        # follows them (the reminders' settle hooks) was attached
        self.recovered_seqs: list[int] = []

    async def recover(self) -> int:
        """Apply and settle every committed operation that is not settled."""
        ledger = self.core.ledger
        pending = await ledger.pending()
        self.recovered_seqs += [row.seq for row in pending]
        for row in pending:
            if row.kind == "sweep":
                await self._finish_sweep(row)
            elif row.kind in DECISION_KINDS:
                await ledger.settle([decision_settlement(row)])
            else:
                entries = await ledger.entries_of(row.seq)
                applied = await self.applier.apply(row, entries, deadline=None)
                await ledger.settle([Settlement(row.seq, result_of(row, entries, applied), applied.events)])
        if pending:
            log.info("recovered %d committed operations", len(pending))
            await self.applier.notify_events()
        return len(pending)

    # ---- the store's marker -------------------------------------------------------------------

    async def open_store(self) -> None:
        """Bind the store to this ledger and check its marker: none (an empty
        or emptied store) or ahead of the ledger: rebuild it from the ledger;
        another ledger's epoch: refuse until `rating rebuild`. Then recover."""
        store, ledger = self.core.store, self.core.ledger
        epoch, last_seq = await ledger.identity()
        store.bind(epoch)
        state = "rebuild asked" if self._rebuild_on_start else await store.marker_state(last_seq)
        if state == "foreign":
            log.error("the balance store (%s) mirrors another ledger than this one (epoch %s): refusing to "
                      "start; run `rating rebuild` to rebuild it from this ledger", store.name, epoch)
            raise errors.Unavailable(f"the balance store ({store.name}) mirrors another ledger: run "
                                     "`rating rebuild` to rebuild it from this ledger, then start again")
        if state == "ok" and not await self._markers_may_have_expired():
            await self.recover()
            return
        if store.name != "memory":  # the in-process store is built at every start
            log.warning("balance store marker: %s (ledger epoch %s, sequence %d): rebuilding the store "
                        "from the ledger", state, epoch, last_seq)
        wallets = await self.rebuild_store()
        applied = await self.recover()
        if store.name != "memory":
            log.warning("rebuilt the balance store: %d wallets, %d pending operations applied",
                        wallets, applied)

    def _store_mismatch(self, exc: StoreMismatch) -> None:
        """The store lost its marker (emptied, or a new Redis behind the same
        address): rebuild it from the ledger in the background, once at a time."""
        if exc.foreign:
            if not self._foreign_logged:
                log.error("%s", exc)
                self._foreign_logged = True
            return
        if self.rebuilding is None or self.rebuilding.done():
            log.warning("%s", exc)
            self.rebuilding = asyncio.create_task(self._rebuild_running(), name="prepaid-store-rebuild")

    async def _rebuild_running(self) -> None:
        try:
            async with self.core.store_gate:
                wallets = await self.rebuild_store()
                applied = await self.recover()
        except errors.PrepaidError as exc:
            log.error("rebuilding the balance store failed (%s); the next call that finds it without a "
                      "marker tries again", exc.message)
            return
        log.warning("rebuilt the balance store from the ledger: %d wallets, %d pending operations applied",
                    wallets, applied)

    async def _markers_may_have_expired(self) -> bool:
        """An unsettled operation older than the store's memory of applied
        operations might be applied twice: rebuild the store instead."""
        ttl_s = self.core.store.marker_ttl_s
        if not ttl_s:
            return False
        pending = await self.core.ledger.pending()
        if pending and self.core.now_us() - pending[0].created_us > ttl_s * 1_000_000:
            log.warning("operation %d has waited longer than the store remembers applied operations "
                        "(%d s): rebuilding the store from the ledger", pending[0].seq, ttl_s)
            return True
        return False

    async def rebuild_store(self) -> int:
        """Make the store hold exactly the ledger's settled balances and states."""
        core = self.core
        _, last_seq = await core.ledger.identity()
        balances = await core.ledger.balances(settled_only=True)
        last = await core.ledger.last_events()
        states = [WalletState(a, w, b, status_after_rebuild(core.policy.of(w, a), last.get((a, w)), b))
                  for a, w, b in balances]
        try:
            await core.store.replace_all(states, seq=last_seq)
        except StoreUnavailable as exc:
            raise errors.Unavailable(f"balance store: {exc}") from exc
        return len(states)

    # ---- deferred cut-offs --------------------------------------------------------------------

    async def sweep(self) -> list[Event]:
        """Cut off deferred wallets whose friendly hours are over."""
        core = self.core
        if await core.store.deferred_count() == 0:
            return []
        policies, friendly = core.policies(core.wallet_names)
        cutting = [*policies.values(), *core.policy.overrides.values()]
        if all(friendly[p.name] for p in cutting if p.cut_off):
            return []
        now_us = core.now_us()
        row, _ = await core.ledger.commit(NewOp(f"sweep:{now_us}", "sweep", b"", Entries.empty(),
                                                created_us=now_us))
        await self.applier.flush()  # the operations answered before it get their event ids first
        async with core.store_gate:
            return await self._finish_sweep(row)

    async def _finish_sweep(self, row: OpRow) -> list[Event]:
        core = self.core
        policies, friendly = core.policies(core.wallet_names)
        try:
            changed, applied = await core.store.sweep(row.seq, policies, friendly, core.policy.overrides)
        except StoreUnavailable as exc:
            core.store_trouble(exc)
            raise errors.Unavailable(f"balance store: {exc}", committed=True) from exc
        events = core.stamp(applied.events, "sweep")
        result = json.dumps([[c.account_id, c.wallet, c.balance_minor, int(c.status)] for c in changed])
        await core.ledger.settle([Settlement(row.seq, result.encode(), events)])
        with contextlib.suppress(StoreUnavailable):
            await core.store.forget([row.seq])
        await self.applier.notify_events()
        return events

    # ---- the ledger ---------------------------------------------------------------------------

    async def maintain_forever(self) -> None:
        while True:
            await asyncio.sleep(self.core.limits.maintain_every_s)
            try:
                await self.core.ledger.maintain()
            except Exception as exc:  # upkeep only: the next round tries again
                log.warning("ledger upkeep failed (%s); trying again later", exc)
