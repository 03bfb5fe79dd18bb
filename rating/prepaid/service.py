"""The prepaid service: deductions, movements, balances and events over a
balance store and a ledger (docs/durability.md is the contract this keeps).

Every operation goes the same way:
1. validate; a retry of a known key returns the stored result;
2. commit to the ledger, in one transaction: the key, the entries and, for a
   deduction batch, the meter state it moved (the Rater moves in memory
   first and goes back if the commit fails);
3. apply to the balance store (idempotent by the operation's sequence);
4. answer; the result and events are settled into the ledger in the background.
A crash between 2 and 4 leaves a committed, unsettled operation, which
`recover` (run at start) applies and settles.

`PrepaidService` is the one object callers hold (the servicers, the command
line, tests): it composes the parts, each of one job, over the state they
share (`core.Core`), and owns their life cycle (start, load_config, close):

- `movements`  top-ups, refunds and adjustments;
- `refunds`    refunds that wait for an approver, where the site asks for one;
- `deductions` batches of readings (their order: `ordering`);
- `queries`    balances, events, a batch's anomaly pages;
- `upkeep`     recovery, the store's marker and rebuild, sweeps, ledger upkeep;
- `applying`   the way of a committed operation into the store and back into the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable

import pyarrow as pa

from rating.errors import RatingError
from rating.prepaid import errors
from rating.prepaid.applying import Applier
from rating.prepaid.core import Core, Limits
from rating.prepaid.deductions import Deduction, Deductions, DeductionStream
from rating.prepaid.ledger.base import Ledger, LedgerBusy, LedgerUnavailable
from rating.prepaid.movements import Movements
from rating.prepaid.queries import BalanceFilter, Queries, Wallets
from rating.prepaid.records import DeductionResult, Event, Movement, MovementResult, SentBatch
from rating.prepaid.refund_approvals import RefundApprovals, RefundState
from rating.prepaid.sitedocs import SiteDocs
from rating.prepaid.store.base import BalanceStore
from rating.prepaid.upkeep import Upkeep

__all__ = ["BalanceFilter", "Deduction", "DeductionStream", "Limits", "PrepaidService"]


class PrepaidService:
    def __init__(self, store: BalanceStore, ledger: Ledger, *, docs: SiteDocs | None = None,
                 limits: Limits | None = None, clock: Callable[[], float] = time.time,
                 rebuild_on_start: bool | None = None, rating_process: bool = False,
                 postpaid_groups: frozenset[str] = frozenset()):
        """`postpaid_groups`: the shared-area groups the site's bill splits (its share
        heads); a site with any other group is refused (rating.prepaid.sitedocs)."""
        self.core = core = Core(store, ledger, limits or Limits(), clock, postpaid_groups)
        self._given_docs = docs
        self.applier = Applier(core)
        self.movements = Movements(core, self.applier)
        self.deductions = Deductions(core, self.applier, rating_process=rating_process)
        self.queries = Queries(core, self.applier)
        self.refunds = RefundApprovals(core, self.movements, self.queries.balance)
        self.upkeep = Upkeep(core, self.applier, rebuild_on_start=bool(rebuild_on_start))
        self._settler: asyncio.Task | None = None
        self._retrier: asyncio.Task | None = None
        self._maintainer: asyncio.Task | None = None

    # ---- the shared state, as callers (and tests) name it -------------------------------------

    store = property(lambda self: self.core.store, lambda self, v: setattr(self.core, "store", v))
    ledger = property(lambda self: self.core.ledger, lambda self, v: setattr(self.core, "ledger", v))
    limits = property(lambda self: self.core.limits, lambda self, v: setattr(self.core, "limits", v))
    docs = property(lambda self: self.core.docs)
    config = property(lambda self: self.core.config)
    policy = property(lambda self: self.core.policy)
    wallet_names = property(lambda self: self.core.wallet_names)
    meter_wallets = property(lambda self: self.core.meter_wallets)
    config_version = property(lambda self: self.core.config_version)
    planner = property(lambda self: self.deductions.planner)

    def now(self):
        """The server's clock, as the reading window and cut-off hours see it."""
        return self.core.now()

    # ---- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        ledger = self.core.ledger
        await ledger.open()
        try:
            await ledger.claim(f"rating pid {os.getpid()} on {socket.gethostname()}",
                               wait_s=self.core.limits.claim_wait_s)
        except LedgerBusy as exc:
            await ledger.close()
            raise errors.Unavailable(f"the ledger is in use: {exc}; one server per ledger (and no "
                                     "rebuild while it runs): stop it first") from None
        self._install(await self._docs_in_force())
        await self.deductions.reload_meter_state()
        try:
            await self.upkeep.open_store()
        except BaseException:
            await ledger.close()  # lets go of the claim: `rating rebuild` may run
            self.deductions.close_planner()
            raise
        self._settler = asyncio.create_task(self.applier.settle_forever(), name="prepaid-settler")
        self._retrier = asyncio.create_task(self.applier.retry_stranded_forever(), name="prepaid-retrier")
        self._maintainer = asyncio.create_task(self.upkeep.maintain_forever(), name="prepaid-ledger-upkeep")

    async def _docs_in_force(self) -> SiteDocs:
        """The configuration given (stored if new) or, if none, the ledger's last."""
        core, docs = self.core, self._given_docs
        stored = await core.ledger.load_config()
        if docs is None:
            core.config_version = 0 if stored is None else stored[0]
            return SiteDocs() if stored is None else SiteDocs.from_bytes(stored[1])
        if stored is None or stored[1] != docs.to_bytes():
            core.config_version = await core.ledger.save_config(docs.to_bytes())
        else:
            core.config_version = stored[0]
        return docs

    def _install(self, docs: SiteDocs) -> None:
        self.core.install(docs)
        self.deductions.new_planner()

    async def close(self) -> None:
        """Finish what was begun, settle what is queued, then close the backends."""
        core = self.core
        while core.tasks:
            await asyncio.gather(*list(core.tasks), return_exceptions=True)
        if self.upkeep.rebuilding is not None:
            await asyncio.gather(self.upkeep.rebuilding, return_exceptions=True)
        if self._settler is not None:
            await self.applier.flush()
        for task in (self._settler, self._retrier, self._maintainer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._settler = self._retrier = self._maintainer = None
        await core.store.close()
        await core.ledger.close()
        self.deductions.close()

    async def flush(self) -> None:
        """Wait until every answered operation is settled in the ledger."""
        await self.applier.flush()

    async def load_config(self, *, site_toml: str = "", tariffs_toml: tuple[str, ...] = (),
                          meters: bytes = b"", accounts: bytes = b"", groups: bytes = b"") -> int:
        """Replace parts of the configuration; meter state carries over by meter id."""
        core, deductions = self.core, self.deductions
        try:
            docs = core.docs.merged(site_toml=site_toml, tariffs_toml=tariffs_toml, meters=meters,
                                    accounts=accounts, groups=groups)
            docs.build(postpaid_groups=core.postpaid_groups)
        except RatingError as exc:
            raise errors.InvalidArgument.of(exc) from None
        async with deductions.order.quiet():
            if deductions.order.stale:
                await deductions.reload_meter_state()
            carried = deductions.planner.checkpoint().to_bytes()
            try:
                version = await core.ledger.save_config(docs.to_bytes())
            except LedgerUnavailable as exc:
                raise errors.Unavailable(f"ledger: {exc}") from exc
            self._install(docs)
            deductions.planner.restore_stored([carried])
            core.config_version = version
        return version

    # ---- the operations -----------------------------------------------------------------------

    async def deduct(self, batch_id: str, readings: pa.Table | SentBatch, *,
                     deadline: float | None = None) -> DeductionResult:
        """Rate one batch and debit each account wallet once (idempotent by
        batch id and the batch's content, idempotency.readings_sha256)."""
        started = self.start_deduct(batch_id, readings, deadline=deadline)
        return await asyncio.shield(started.result)

    def start_deduct(self, batch_id: str, readings: pa.Table | SentBatch, *,
                     deadline: float | None = None) -> Deduction:
        """Start one batch of no stream (Deductions.start); returns at once."""
        return self.deductions.start_alone(batch_id, readings, deadline)

    def open_stream(self) -> DeductionStream:
        """A stream of batches, rated and committed in the order they are started."""
        return DeductionStream(self.deductions)

    async def move(self, movement: Movement, *, deadline: float | None = None) -> MovementResult:
        """Top up, refund or adjust one wallet (idempotent by key)."""
        return await self.movements.move(movement, deadline=deadline)

    async def request_refund(self, movement: Movement, *, requested_by: str) -> RefundState:
        """A refund where the site asks for approval (policy.refund_approval): recorded, no money
        moves until another person approves it (`decide_refund`)."""
        return await self.refunds.request(movement, requested_by)

    async def decide_refund(self, key: str, *, approve: bool, decided_by: str, reason: str = "",
                            deadline: float | None = None) -> RefundState:
        """Approve (the refund moves money, never below 0) or reject a requested refund."""
        return await self.refunds.decide(key, approve=approve, decided_by=decided_by, reason=reason,
                                         deadline=deadline)

    async def sweep(self) -> list[Event]:
        """Cut off deferred wallets whose friendly hours are over."""
        return await self.upkeep.sweep()

    async def recover(self) -> int:
        """Apply and settle every committed operation that is not settled."""
        return await self.upkeep.recover()

    async def rebuild_store(self) -> int:
        """Make the store hold exactly the ledger's settled balances and states."""
        return await self.upkeep.rebuild_store()

    # ---- queries ------------------------------------------------------------------------------

    async def balance(self, account_id: str) -> Wallets:
        return await self.queries.balance(account_id)

    async def list_balances(self, where: BalanceFilter, page_size: int, page_token: str = ""
                            ) -> tuple[list[tuple[str, Wallets]], str]:
        return await self.queries.list_balances(where, page_size, page_token)

    def events(self, after: int = 0, *, types: tuple[int, ...] = (), account_id: str = "",
               stop_at_end: bool = False, poll_s: float = 1.0) -> AsyncIterator[Event]:
        return self.queries.events(after, types=types, account_id=account_id, stop_at_end=stop_at_end,
                                   poll_s=poll_s)

    async def anomalies(self, batch_id: str, token: str = "") -> tuple[pa.Table, str, int]:
        return await self.queries.anomalies(batch_id, token)
