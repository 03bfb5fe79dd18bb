"""What every part of the prepaid service shares: the backends, the limits,
the clock, the configuration in force, the key locks, the store's health and
the bound on operations in flight (`Limits`, each bound with what happens at it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from rating.prepaid import errors
from rating.prepaid.idempotency import KeyLocks
from rating.prepaid.ledger.base import BalanceOutOfRange, Ledger, LedgerUnavailable, OpRow
from rating.prepaid.planning import wallets_of
from rating.prepaid.records import Entries, Event
from rating.prepaid.sitedocs import SiteDocs
from rating.prepaid.store.base import BalanceStore, StoreMismatch, StoreUnavailable
from rating.prepaid.wallets import BALANCE_LIMIT_MINOR, WALLET_KINDS, WalletPolicy, check_wallet_name

STORE_FRESH_S = 0.05  # a store that answered this recently counts as up without a ping


@dataclass(frozen=True)
class Limits:
    """The service's bounds. At each: a clear error, never unbounded growth."""

    batch_rows_max: int = 1_000_000  # a larger batch: RESOURCE_EXHAUSTED (LIMIT_EXCEEDED), nothing done
    # Operations admitted and not yet settled (answered or not). At the bound a new
    # operation is refused before anything happens (RESOURCE_EXHAUSTED, LIMIT_EXCEEDED,
    # limit=ops_pending_max). It bounds every queue and map of the service: the key locks,
    # the settle queue, the waiters of unsettled operations, the stranded ones, the plans in
    # flight (in the Rater and in the planner process) and the tasks that outlive callers.
    ops_pending_max: int = 4096
    apply_retry_s: float = 5.0  # how long an operation retries the store after its commit
    checkpoint_every_batches: int = 500  # deduction batches between whole meter-state checkpoints
    settle_batch_ops_max: int = 256  # operations settled in one ledger transaction
    page_accounts_max: int = 10_000  # accounts in one ListBalances page (a larger page_size is cut)
    anomaly_rows_max: int = 10_000  # anomaly rows in one answer or page (GetAnomalies has the rest)
    claim_wait_s: float = 5.0  # how long start waits for another process to let go of the ledger
    maintain_every_s: float = 1.0  # Ledger.maintain (the PostgreSQL ledger folds its wallet sums)


class Core:
    """The state the movements, deductions, queries and upkeep of one service share."""

    def __init__(self, store: BalanceStore, ledger: Ledger, limits: Limits, clock: Callable[[], float],
                 postpaid_groups: frozenset[str] = frozenset()):
        self.store, self.ledger, self.limits, self.clock = store, ledger, limits, clock
        self.postpaid_groups = postpaid_groups  # the shared-area groups the site's bill splits
        self.keys = KeyLocks()
        self.config_version = 0
        self.store_answered_at = 0.0  # monotonic time of the store's last good answer
        # Settles (and the store's forgetting) wait while the store is rebuilt, so that an
        # operation is either in the rebuild's snapshot of settled balances or still pending.
        self.store_gate = asyncio.Lock()
        self.on_store_mismatch: Callable[[StoreMismatch], None] = lambda exc: None
        self.in_flight = 0  # operations admitted and not answered yet
        self.unsettled: dict[int, asyncio.Event] = {}  # committed here, not settled: set once settled
        self.tasks: set[asyncio.Task] = set()  # commits and applies that outlive their callers

    def install(self, docs: SiteDocs) -> None:
        """Put a configuration in force (its checks are SiteDocs.build's)."""
        config, policy = docs.build(postpaid_groups=self.postpaid_groups)
        self.docs, self.config, self.policy = docs, config, policy
        self.wallet_names = sorted(set(WALLET_KINDS) | set(policy.wallets) | set(wallets_of(config, policy)))
        self.meter_wallets: dict[str, set[str]] = {}
        for meter in config.registry.meters:
            self.meter_wallets.setdefault(meter.account_id, set()).add(meter.wallet)

    # ---- the bound on operations ----------------------------------------------------------------

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Count an operation while it runs; refuse it at `ops_pending_max`.
        An operation still unsettled after its answer stays counted in
        `unsettled` (it may be counted twice meanwhile: the bound errs low)."""
        pending = self.in_flight + len(self.unsettled)
        if pending >= self.limits.ops_pending_max:
            raise errors.TooLarge(f"{pending} operations are pending, the most this server holds "
                                  f"(ops_pending_max = {self.limits.ops_pending_max}): retry later",
                                  limit="ops_pending_max")
        assert len(self.keys) <= self.in_flight, "a key lock is held outside an operation"
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            assert self.in_flight >= 0, "an operation left that never came in"

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """A task that runs to its end even if whoever awaits it is cancelled."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(_observed)  # an abandoned result's error is not "never retrieved"
        return task

    # ---- checks of the configuration in force -------------------------------------------------

    def check_account(self, account_id: str) -> None:
        if account_id not in self.config.registry.accounts:
            raise errors.NotFound(f"unknown account {account_id!r}", account_id=account_id)

    def check_wallet(self, wallet: str) -> None:
        try:
            check_wallet_name(wallet)
        except ValueError as exc:
            raise errors.InvalidArgument(str(exc), field="wallet") from None
        if wallet not in self.wallet_names:
            raise errors.InvalidArgument(
                f"unknown wallet {wallet!r}; this site has {', '.join(self.wallet_names)}", field="wallet")

    def policies(self, wallets) -> tuple[dict[str, WalletPolicy], dict[str, bool]]:
        """Each wallet's site policy, and whether it is in its friendly hours now."""
        now = self.now()
        policies = {w: self.policy.of(w) for w in set(wallets)}
        site = self.config.site
        return policies, {w: p.is_friendly(now, site) for w, p in policies.items()}

    # ---- the clock ----------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The server's clock, as the reading window and cut-off hours see it."""
        return dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc)

    def now_us(self) -> int:
        return int(round(self.clock() * 1_000_000))

    def stamp(self, events: list[Event], cause: str) -> list[Event]:
        at_us = self.now_us()
        return [replace(e, at_us=at_us, cause=cause) for e in events]

    # ---- the backends -------------------------------------------------------------------------

    async def find(self, key: str) -> OpRow | None:
        try:
            return await self.ledger.find(key)
        except LedgerUnavailable as exc:
            raise errors.Unavailable(f"ledger: {exc}") from exc

    async def entries_of(self, seq: int) -> Entries:
        try:
            return await self.ledger.entries_of(seq)
        except LedgerUnavailable as exc:
            raise errors.Unavailable(f"ledger: {exc}") from exc

    async def store_ready(self) -> None:
        """Refuse before committing (nothing applied) when the store is down: a
        ping before each operation (unless the store answered in the last
        STORE_FRESH_S) narrows "committed but not applied" to a store that
        dies in the moment between its last answer and the apply."""
        if time.monotonic() - self.store_answered_at < STORE_FRESH_S:
            return
        try:
            await self.store.ping()
        except StoreUnavailable as exc:
            raise errors.Unavailable(f"balance store: {exc}") from exc
        self.store_answered_at = time.monotonic()

    def store_trouble(self, exc: StoreUnavailable) -> None:
        """A store call failed: a store that lost its marker goes to upkeep,
        which rebuilds it in the background; meanwhile its calls answer UNAVAILABLE."""
        if isinstance(exc, StoreMismatch):
            self.on_store_mismatch(exc)


def balance_limit(exc: BalanceOutOfRange, **metadata: str) -> errors.BalanceLimit:
    return errors.BalanceLimit(str(exc), account_id=exc.account_id, wallet=exc.wallet,
                               balance_minor=exc.balance_minor, limit_minor=BALANCE_LIMIT_MINOR, **metadata)


def check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise errors.DeadlineExceeded("deadline passed before the operation was committed")


def _observed(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()
