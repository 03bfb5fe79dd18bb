"""A committed operation's way on: applied to the balance store (retried
while the store is down), then its result and events settled into the ledger
in the background, in batches; a retry of an unsettled one waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from rating.prepaid import errors
from rating.prepaid.core import Core
from rating.prepaid.ledger.base import OpRow, Settlement
from rating.prepaid.records import Applied, DeductionResult, Entries, MovementResult
from rating.prepaid.store.base import StoreUnavailable
from rating.prepaid.wallets import Status

log = logging.getLogger("rating.prepaid")
STRANDED_PAUSE_S = 0.5  # between tries of a stranded operation while the store stays down


class Applier:
    def __init__(self, core: Core):
        self.core = core
        # Each item is an admitted operation's, so it holds at most ops_pending_max (Core.admitted).
        self.settle_queue: asyncio.Queue[Settlement] = asyncio.Queue()
        self.stranded: dict[int, tuple[OpRow, Entries]] = {}  # committed, store down
        self._stranded_signal = asyncio.Event()
        self.events_changed = asyncio.Condition()

    async def apply(self, row: OpRow, entries: Entries, *, deadline: float | None) -> Applied:
        """Apply a committed operation to the store, retrying until the deadline."""
        core = self.core
        policies, friendly = core.policies(entries.wallets)
        overrides = core.policy.overrides_of(entries.account_ids, entries.wallets)
        give_up = time.monotonic() + core.limits.apply_retry_s
        if deadline is not None:
            give_up = min(give_up, deadline)
        pause_s = 0.01
        while True:
            try:
                applied = await core.store.apply(row.seq, entries, policies, friendly, overrides)
                core.store_answered_at = time.monotonic()
                break
            except StoreUnavailable as exc:
                core.store_trouble(exc)
                if time.monotonic() + pause_s > give_up:
                    raise errors.Unavailable(
                        f"balance store: {exc}; the operation is committed and will be applied when "
                        "the store is back: retry with the same id for its result",
                        committed=True, sequence=str(row.seq)) from exc
                await asyncio.sleep(pause_s)
                pause_s = min(pause_s * 2, 0.5)
        cause = row.key.split(":", 1)[1]
        return Applied(applied.balances_minor, applied.statuses, core.stamp(applied.events, cause))

    async def apply_committed(self, row: OpRow, entries: Entries, *, deadline: float | None) -> Applied:
        """Apply an operation this process just committed; if the store stays
        down it is handed to the retry task and the caller gets Unavailable."""
        self.core.unsettled[row.seq] = asyncio.Event()
        try:
            return await self.apply(row, entries, deadline=deadline)
        except errors.Unavailable:
            self.stranded[row.seq] = (row, entries)
            self._stranded_signal.set()
            raise

    async def retry_stranded_forever(self) -> None:
        while True:
            await self._stranded_signal.wait()
            self._stranded_signal.clear()
            while self.stranded:
                seq = min(self.stranded)
                row, entries = self.stranded[seq]
                try:
                    applied = await self.apply(row, entries, deadline=None)
                except errors.Unavailable:
                    await asyncio.sleep(STRANDED_PAUSE_S)
                    continue
                del self.stranded[seq]
                self.settle_later(Settlement(seq, result_of(row, entries, applied), applied.events))
                log.info("applied operation %d after the balance store came back", seq)

    def settle_later(self, item: Settlement) -> None:
        assert item.seq in self.core.unsettled, "settled later but not waited for"
        self.settle_queue.put_nowait(item)
        assert self.settle_queue.qsize() <= self.core.limits.ops_pending_max, "settle queue past its bound"

    async def flush(self) -> None:
        """Wait until every answered operation is settled in the ledger."""
        await self.settle_queue.join()

    async def settle_forever(self) -> None:
        queue, core = self.settle_queue, self.core
        while True:
            items = [await queue.get()]
            while not queue.empty() and len(items) < core.limits.settle_batch_ops_max:
                items.append(queue.get_nowait())
            await self._settle(items)
            for item in items:
                core.unsettled.pop(item.seq).set()
                queue.task_done()
            await self.notify_events()

    async def _settle(self, items: list[Settlement]) -> None:
        pause_s = 0.05
        while True:
            try:
                async with self.core.store_gate:
                    await self.core.ledger.settle(items)
                    with contextlib.suppress(StoreUnavailable):
                        await self.core.store.forget([i.seq for i in items])
                return
            except Exception as exc:  # keep trying: the answers went out, the results must land
                log.warning("settling %d operations failed (%s); retrying", len(items), exc)
                await asyncio.sleep(pause_s)
                pause_s = min(pause_s * 2, 5.0)

    async def settled_result(self, row: OpRow) -> bytes:
        """The stored result of a committed operation, once it is settled."""
        if row.result is not None:
            return row.result
        core = self.core
        waiter = core.unsettled.get(row.seq)
        if waiter is not None:  # this process is applying or settling it
            try:
                await asyncio.wait_for(waiter.wait(), core.limits.apply_retry_s)
            except TimeoutError:
                raise errors.Unavailable(
                    "the operation is committed but not applied yet (balance store down?): retry later",
                    committed=True, sequence=str(row.seq)) from None
            settled = await core.find(row.key)
            assert settled is not None and settled.result is not None, "settled without a result"
            return settled.result
        # Committed by another process that did not settle it: apply (idempotent) and settle.
        entries = await core.ledger.entries_of(row.seq)
        async with core.store_gate:
            applied = await self.apply(row, entries, deadline=None)
            result = result_of(row, entries, applied)
            await core.ledger.settle([Settlement(row.seq, result, applied.events)])
        await self.notify_events()
        return result

    async def notify_events(self) -> None:
        async with self.events_changed:
            self.events_changed.notify_all()


def result_of(row: OpRow, entries: Entries, applied: Applied) -> bytes:
    """The stored result of a committed operation, rebuilt from the ledger row."""
    if row.kind == "deduct":
        return DeductionResult.of_commit(row, entries, applied).to_bytes()
    # movements: one entry
    _kind, account, wallet, *_ = json.loads(row.request)
    return MovementResult(row.key.removeprefix("move:"), row.seq, account, wallet,
                          int(entries.changes_minor[0]), int(applied.balances_minor[0]),
                          Status(int(applied.statuses[0])), applied.events).to_bytes()
