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
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from rating.errors import RatingError
from rating.prepaid import errors
from rating.prepaid.idempotency import KeyLocks, check_key, check_replay, readings_sha256, sha256
from rating.prepaid.ledger.base import (
    BalanceOutOfRange,
    Ledger,
    LedgerBusy,
    LedgerUnavailable,
    LimitExceeded,
    NewOp,
    OpRow,
    Settlement,
)
from rating.prepaid.meterstate import StateImage
from rating.prepaid.planner_process import PlannerGone, ProcessPlanner
from rating.prepaid.planning import DeductionPlanner
from rating.prepaid.records import (
    MOVEMENT_KINDS,
    PAYMENT_METHODS,
    AnomalyPages,
    Applied,
    DeductionResult,
    Entries,
    Event,
    Movement,
    MovementResult,
    WalletState,
    deductions_table,
    pack_parts,
    page_token,
    read_table_bytes,
    table_bytes,
    unpack_parts,
)
from rating.prepaid.sitedocs import SiteDocs
from rating.prepaid.store.base import BalanceStore, StoreMismatch, StoreUnavailable
from rating.prepaid.wallets import (
    AMOUNT_LIMIT_MINOR,
    BALANCE_LIMIT_MINOR,
    WALLET_KINDS,
    Status,
    WalletPolicy,
    check_wallet_name,
    status_after_rebuild,
)

log = logging.getLogger("rating.prepaid")
STORE_FRESH_S = 0.05  # a store that answered this recently counts as up without a ping


@dataclass(frozen=True)
class Limits:
    batch_rows_max: int = 1_000_000
    apply_retry_s: float = 5.0  # how long an operation retries the store after its commit
    checkpoint_every: int = 500  # deduction batches between whole meter-state checkpoints
    settle_batch_max: int = 256
    page_size_max: int = 10_000
    anomaly_rows_max: int = 10_000  # anomaly rows in one answer or page (GetAnomalies has the rest)
    claim_wait_s: float = 5.0  # how long start waits for another process to let go of the ledger
    maintain_every_s: float = 1.0  # Ledger.maintain (the PostgreSQL ledger folds its wallet sums)


@dataclass(frozen=True)
class Deduction:
    """A started deduction batch (PrepaidService.start_deduct)."""

    rated: asyncio.Future  # True once rated (or found to be a retry); False if it failed before
    result: asyncio.Future  # the DeductionResult, or the batch's error


@dataclass(frozen=True)
class _Turn:
    """A rated batch's place in the commit order."""

    generation: int
    previous: asyncio.Future | None
    done: asyncio.Future


@dataclass(frozen=True)
class BalanceFilter:
    wallet: str = ""
    below_threshold: bool = False
    statuses: tuple[Status, ...] = ()


class PrepaidService:
    def __init__(self, store: BalanceStore, ledger: Ledger, *, docs: SiteDocs | None = None,
                 limits: Limits = Limits(), clock: Callable[[], float] = time.time,
                 rebuild_on_start: bool | None = None, rating_process: bool = False):
        self.store, self.ledger, self.limits = store, ledger, limits
        self._given_docs = docs
        self._clock = clock
        self._rebuild_on_start = bool(rebuild_on_start)  # else the store's marker decides
        # Rate in a child process (rating.prepaid.planner_process) rather than on a thread.
        self._rating_process = rating_process
        self.planner: DeductionPlanner | ProcessPlanner
        self._keys = KeyLocks()
        self._rating = asyncio.Lock()  # plan + commit of deductions, in ledger order
        self._settle_queue: asyncio.Queue[Settlement] = asyncio.Queue()
        self._settler: asyncio.Task | None = None
        self._events_changed = asyncio.Condition()
        # Operations this process committed and has not settled yet: a retry of
        # one waits for its settlement instead of applying it a second time.
        self._unsettled: dict[int, asyncio.Event] = {}
        self._stranded: dict[int, tuple[OpRow, Entries]] = {}  # committed, store down
        self._stranded_signal = asyncio.Event()
        self._retrier: asyncio.Task | None = None
        self._maintainer: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()  # commits and applies that outlive their callers
        self._rating_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rating")
        self._since_checkpoint = 0
        self._planner_stale = False  # a commit failed without saying whether it happened
        self._store_answered_at = 0.0  # monotonic time of the store's last good answer
        self._generation = 0  # bumped when a commit fails: the batches rated after it are void
        self._commit_tail: asyncio.Future | None = None  # the last rated batch's commit
        self.config_version = 0
        # Settles (and the store's forgetting) wait while the store is rebuilt, so that an
        # operation is either in the rebuild's snapshot of settled balances or still pending.
        self._store_gate = asyncio.Lock()
        self._rebuilding: asyncio.Task | None = None
        self._foreign_logged = False

    # ---- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.ledger.open()
        try:
            await self.ledger.claim(f"rating pid {os.getpid()} on {socket.gethostname()}",
                                    wait_s=self.limits.claim_wait_s)
        except LedgerBusy as exc:
            await self.ledger.close()
            raise errors.Unavailable(f"the ledger is in use: {exc}; one server per ledger (and no "
                                     "rebuild while it runs): stop it first") from None
        stored = await self.ledger.load_config()
        docs = self._given_docs
        if docs is None:
            docs = SiteDocs() if stored is None else SiteDocs.from_bytes(stored[1])
            self.config_version = 0 if stored is None else stored[0]
        elif stored is None or stored[1] != docs.to_bytes():
            self.config_version = await self.ledger.save_config(docs.to_bytes())
        else:
            self.config_version = stored[0]
        self._install(docs)
        await self._reload_meter_state()
        try:
            await self._open_store()
        except BaseException:
            await self.ledger.close()  # lets go of the claim: `rating rebuild` may run
            if isinstance(self.planner, ProcessPlanner):
                self.planner.close()
            raise
        self._settler = asyncio.create_task(self._settle_forever(), name="prepaid-settler")
        self._retrier = asyncio.create_task(self._retry_stranded_forever(), name="prepaid-retrier")
        self._maintainer = asyncio.create_task(self._maintain_forever(), name="prepaid-ledger-upkeep")

    def _install(self, docs: SiteDocs) -> None:
        config, policy = docs.build()
        self.docs, self.config, self.policy = docs, config, policy
        self._new_planner()
        self.wallet_names = sorted(set(WALLET_KINDS) | set(policy.wallets) | set(self.planner.wallet_names))
        self.meter_wallets: dict[str, set[str]] = {}
        for meter in config.registry.meters:
            self.meter_wallets.setdefault(meter.account_id, set()).add(meter.wallet)

    def _new_planner(self) -> None:
        """A fresh planner for the current configuration (its Rater is empty)."""
        old = getattr(self, "planner", None)
        if isinstance(old, ProcessPlanner):
            old.close()
        if self._rating_process:
            self.planner = ProcessPlanner(self.docs.to_bytes())
        else:
            self.planner = DeductionPlanner(self.config, self.policy)

    async def close(self) -> None:
        """Finish what was begun, settle what is queued, then close the backends."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._rebuilding is not None:
            await asyncio.gather(self._rebuilding, return_exceptions=True)
        if self._settler is not None:
            await self._settle_queue.join()
        for task in (self._settler, self._retrier, self._maintainer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._settler = self._retrier = self._maintainer = None
        await self.store.close()
        await self.ledger.close()
        self._rating_thread.shutdown(wait=True)
        if isinstance(self.planner, ProcessPlanner):
            self.planner.close()

    async def flush(self) -> None:
        """Wait until every answered operation is settled in the ledger."""
        await self._settle_queue.join()

    async def recover(self) -> int:
        """Apply and settle every committed operation that is not settled."""
        pending = await self.ledger.pending()
        for row in pending:
            if row.kind == "sweep":
                await self._finish_sweep(row)
            else:
                entries = await self.ledger.entries_of(row.seq)
                applied = await self._apply(row, entries, deadline=None)
                await self.ledger.settle([Settlement(row.seq, self._result_of(row, entries, applied),
                                                     applied.events)])
        if pending:
            log.info("recovered %d committed operations", len(pending))
            await self._notify_events()
        return len(pending)

    async def _open_store(self) -> None:
        """Bind the store to this ledger and check its marker: none (an empty
        or emptied store) or ahead of the ledger: rebuild it from the ledger;
        another ledger's epoch: refuse until `rating rebuild`. Then recover."""
        epoch, last_seq = await self.ledger.identity()
        self.store.bind(epoch)
        state = "rebuild asked" if self._rebuild_on_start else await self.store.marker_state(last_seq)
        if state == "foreign":
            log.error("the balance store (%s) mirrors another ledger than this one (epoch %s): refusing to "
                      "start; run `rating rebuild` to rebuild it from this ledger", self.store.name, epoch)
            raise errors.Unavailable(f"the balance store ({self.store.name}) mirrors another ledger: run "
                                     "`rating rebuild` to rebuild it from this ledger, then start again")
        if state == "ok" and not await self._markers_may_have_expired():
            await self.recover()
            return
        if self.store.name != "memory":  # the in-process store is built at every start
            log.warning("balance store marker: %s (ledger epoch %s, sequence %d): rebuilding the store "
                        "from the ledger", state, epoch, last_seq)
        wallets = await self.rebuild_store()
        applied = await self.recover()
        if self.store.name != "memory":
            log.warning("rebuilt the balance store: %d wallets, %d pending operations applied",
                        wallets, applied)

    def _store_trouble(self, exc: StoreUnavailable) -> None:
        """A store call failed: if the store lost its marker (emptied, or a new
        Redis behind the same address), rebuild it from the ledger in the
        background; meanwhile its calls answer UNAVAILABLE."""
        if not isinstance(exc, StoreMismatch):
            return
        if exc.foreign:
            if not self._foreign_logged:
                log.error("%s", exc)
                self._foreign_logged = True
            return
        if self._rebuilding is None or self._rebuilding.done():
            log.warning("%s", exc)
            self._rebuilding = asyncio.create_task(self._rebuild_running(), name="prepaid-store-rebuild")

    async def _rebuild_running(self) -> None:
        try:
            async with self._store_gate:
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
        ttl = self.store.marker_ttl_s
        if not ttl:
            return False
        pending = await self.ledger.pending()
        if pending and self._now_us() - pending[0].created_us > ttl * 1_000_000:
            log.warning("operation %d has waited longer than the store remembers applied operations "
                        "(%d s): rebuilding the store from the ledger", pending[0].seq, ttl)
            return True
        return False

    async def rebuild_store(self) -> int:
        """Make the store hold exactly the ledger's settled balances and states."""
        _, last_seq = await self.ledger.identity()
        balances = await self.ledger.balances(settled_only=True)
        last = await self.ledger.last_events()
        states = [WalletState(a, w, b, status_after_rebuild(self.policy.of(w, a), last.get((a, w)), b))
                  for a, w, b in balances]
        try:
            await self.store.replace_all(states, seq=last_seq)
        except StoreUnavailable as exc:
            raise errors.Unavailable(f"balance store: {exc}") from exc
        return len(states)

    # ---- deductions ---------------------------------------------------------------------------

    async def deduct(self, batch_id: str, readings: pa.Table, *,
                     deadline: float | None = None) -> DeductionResult:
        """Rate one batch and debit each account wallet once (idempotent by
        batch id and the batch's content, idempotency.readings_sha256)."""
        started = self.start_deduct(batch_id, readings, deadline=deadline)
        return await asyncio.shield(started.result)

    def start_deduct(self, batch_id: str, readings: pa.Table, *, deadline: float | None = None,
                     after: asyncio.Future | None = None) -> Deduction:
        """Start one batch: look its key up, rate it, commit it, apply it. Returns
        at once; `rated` resolves (True) when the batch is rated (or was found
        to be a retry), False when it failed before; `result` is its result.

        A stream starts its next batch right away with `after` = this one's
        `rated`: the next batch's lookups overlap this one's rating, and it is
        rated only after this one, so batches are rated and committed in
        stream order (and a batch after a refused one is refused too). Rating
        runs on its own thread while the event loop moves commits and applies.
        If a commit fails, the Rater goes back to before that batch and the
        batches rated after it fail too (resend from it). Once started, an
        operation is not stopped by its caller going away."""
        rated = asyncio.get_running_loop().create_future()
        task = self._spawn(self._deduct(batch_id, readings, deadline, after, rated))
        return Deduction(rated, task)

    async def _deduct(self, batch_id, readings, deadline, after, rated) -> DeductionResult:
        release = None
        try:
            check_key(batch_id, "batch_id")
            payload_sha256 = await self._readings_sha256(batch_id, readings)
            key = f"batch:{batch_id}"
            release = await self._keys.acquire(key)  # held until the commit is decided
            row = await self._find(key)
            if row is not None:
                release()
                rated.set_result(True)
                return await self._replay_deduction(row, payload_sha256, batch_id)
            if readings.num_rows > self.limits.batch_rows_max:
                raise errors.TooLarge(f"batch has {readings.num_rows} readings; at most "
                                      f"{self.limits.batch_rows_max}", limit="batch_rows_max")
            await self._store_ready()
            if after is not None and not await asyncio.shield(after):
                raise errors.Unavailable("an earlier batch of this stream was refused: resend from it",
                                         batch_id=batch_id)
            async with self._rating:
                _check_deadline(deadline)
                if self._planner_stale:
                    await self._reload_meter_state()
                try:
                    plan, op = await asyncio.get_running_loop().run_in_executor(
                        self._rating_thread, self._plan_deduction, key, batch_id, readings, payload_sha256)
                except PlannerGone as exc:
                    await self._replace_lost_planner()
                    raise errors.Unavailable(f"{exc}; it was restarted: resend", batch_id=batch_id) from None
                turn = _Turn(self._generation, self._commit_tail, asyncio.get_running_loop().create_future())
                self._commit_tail = turn.done
        except BaseException:
            if release is not None:
                release()
            if not rated.done():
                rated.set_result(False)
            raise
        rated.set_result(True)
        return await self._commit_then_apply(batch_id, plan, op, turn, release, deadline)

    async def _readings_sha256(self, batch_id: str, readings: pa.Table) -> bytes:
        """The batch's content hash, off the event loop (a large batch takes milliseconds)."""
        try:
            return await asyncio.to_thread(readings_sha256, readings, self.config.site.quantity_decimals,
                                           where=f"batch {batch_id!r}")
        except RatingError as exc:
            raise errors.InvalidArgument.of(exc, batch_id=batch_id) from None

    def _plan_deduction(self, key, batch_id, readings, payload_sha256):
        planner = self.planner
        try:
            plan = planner.plan(readings, where=f"batch {batch_id!r}", now=self.now())
        except RatingError as exc:
            raise errors.InvalidArgument.of(exc, batch_id=batch_id) from None
        self._since_checkpoint += 1
        checkpoint = None
        if self._since_checkpoint >= self.limits.checkpoint_every:
            checkpoint = planner.checkpoint().to_bytes()
            self._since_checkpoint = 0
        anomalies = AnomalyPages.cut(plan.anomalies, self.limits.anomaly_rows_max)
        head = {"batch_id": batch_id, "readings": plan.readings, **anomalies.summary()}
        request = pack_parts(json.dumps(head).encode(), table_bytes(anomalies.pages[0]))
        later = tuple(table_bytes(page, compression="zstd") for page in anomalies.pages[1:])
        op = NewOp(key, "deduct", payload_sha256, plan.entries, request=request, anomaly_pages=later,
                   meter_state=plan.state.to_bytes(), checkpoint=checkpoint, created_us=self._now_us())
        return plan, op

    async def _commit_then_apply(self, batch_id: str, plan, op: NewOp, turn: _Turn, release,
                                 deadline: float | None) -> DeductionResult:
        try:
            if turn.previous is not None:
                await asyncio.wait([turn.previous])  # commits go in rating order
            if turn.generation != self._generation:
                raise errors.Unavailable("an earlier batch failed to commit and was undone; resend from it",
                                         batch_id=batch_id)
            try:
                row, created = await self.ledger.commit(op)
            except BaseException as exc:
                await self._undo(plan)
                if isinstance(exc, LedgerUnavailable):
                    raise errors.Unavailable(f"ledger: {exc}", batch_id=batch_id) from exc
                if isinstance(exc, BalanceOutOfRange):
                    raise _balance_limit(exc, batch_id=batch_id) from None
                raise
            if not created:  # another process committed this batch first: its state is in the ledger
                await self._undo(plan)
        finally:
            turn.done.set_result(None)
            release()
            self.planner.finished(plan)
        if not created:
            return await self._replay_deduction(row, op.payload_sha256, batch_id)
        applied = await self._apply_committed(row, plan.entries, deadline=deadline)
        result = self._deduction_result(row, plan.entries, applied)
        self._settle_later(Settlement(row.seq, result.to_bytes(), applied.events))
        return result

    async def _undo(self, plan) -> None:
        """A batch did not commit: go back to before it; the batches rated on
        top of it (same generation) will fail. A lost connection may hide a
        commit that happened, so the Rater is reloaded from the ledger before
        the next batch is rated."""
        async with self._rating:  # not while a later batch is being rated
            try:
                self.planner.rollback(plan)
            except PlannerGone:
                await self._replace_lost_planner()
            self._generation += 1
            self._planner_stale = True

    def _spawn(self, coro) -> asyncio.Task:
        """A task that runs to its end even if whoever awaits it is cancelled."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_observed)  # an abandoned result's error is not "never retrieved"
        return task

    async def _replace_lost_planner(self) -> None:
        """The planner process died: start another; the Rater comes back from the ledger."""
        log.error("the planner process died; starting a new one")
        self._new_planner()
        self._generation += 1  # batches rated by the dead one are void
        self._planner_stale = True

    async def _reload_meter_state(self) -> None:
        try:
            images = [StateImage.from_bytes(b) for b in await self.ledger.meter_images()]
        except LedgerUnavailable as exc:
            raise errors.Unavailable(f"ledger: {exc}") from exc
        self.planner.restore(images)
        self._planner_stale = False

    async def _replay_deduction(self, row: OpRow, payload_sha256: bytes, batch_id: str) -> DeductionResult:
        check_replay(row, "deduct", payload_sha256, batch_id)
        result = await self._settled_result(row)
        return DeductionResult.from_bytes(result, await self._entries_of(row.seq))

    async def _settled_result(self, row: OpRow) -> bytes:
        """The stored result of a committed operation, once it is settled."""
        if row.result is not None:
            return row.result
        waiter = self._unsettled.get(row.seq)
        if waiter is not None:  # this process is applying or settling it
            try:
                await asyncio.wait_for(waiter.wait(), self.limits.apply_retry_s)
            except TimeoutError:
                raise errors.Unavailable(
                    "the operation is committed but not applied yet (balance store down?): retry later",
                    committed=True, sequence=str(row.seq)) from None
            settled = await self._find(row.key)
            assert settled is not None and settled.result is not None, "settled without a result"
            return settled.result
        # Committed by another process that did not settle it: apply (idempotent) and settle.
        entries = await self.ledger.entries_of(row.seq)
        async with self._store_gate:
            applied = await self._apply(row, entries, deadline=None)
            result = self._result_of(row, entries, applied)
            await self.ledger.settle([Settlement(row.seq, result, applied.events)])
        await self._notify_events()
        return result

    def _deduction_result(self, row: OpRow, entries: Entries, applied: Applied) -> DeductionResult:
        """A committed batch's answer: what its request row says (readings, the
        first page of anomalies and their summary) and what the store applied."""
        head, first_page = unpack_parts(row.request)
        meta = json.loads(head)
        table = deductions_table(entries, applied.balances_minor, applied.statuses)
        return DeductionResult(meta["batch_id"], row.seq, table, applied.events, meta["readings"],
                               read_table_bytes(first_page), meta["anomalies"], meta["anomaly_counts"],
                               meta["anomaly_pages"])

    def _result_of(self, row: OpRow, entries: Entries, applied: Applied) -> bytes:
        """The stored result of a committed operation, rebuilt from the ledger row."""
        if row.kind == "deduct":
            return self._deduction_result(row, entries, applied).to_bytes()
        # movements: one entry
        kind, account, wallet, _amount, *_ = json.loads(row.request)
        return MovementResult(row.key.removeprefix("move:"), row.seq, account, wallet,
                              int(entries.amounts_minor[0]), int(applied.balances_minor[0]),
                              Status(int(applied.statuses[0])), applied.events).to_bytes()

    async def anomalies(self, batch_id: str, token: str = "") -> tuple[pa.Table, str, int]:
        """One page of a committed batch's anomaly rows: (rows, the next page's
        token or "", all of the batch's anomalies). Pages are cut at commit."""
        check_key(batch_id, "batch_id")
        row = await self._find(f"batch:{batch_id}")
        if row is None:
            raise errors.NotFound(f"no batch {batch_id!r} in the ledger", batch_id=batch_id)
        head, first_page = unpack_parts(row.request)
        meta = json.loads(head)
        pages = meta["anomaly_pages"]
        if token and not (token.isdigit() and token.isascii() and int(token) < pages):
            raise errors.InvalidArgument(f"page_token {token[:40]!r} is not a page of batch {batch_id!r} "
                                         f"(it has {pages})", field="page_token", batch_id=batch_id)
        page = int(token or 0)
        if page == 0:
            rows = first_page
        else:
            try:
                rows = await self.ledger.anomaly_page(row.seq, page)
            except LedgerUnavailable as exc:
                raise errors.Unavailable(f"ledger: {exc}") from exc
        return read_table_bytes(rows), page_token(page + 1, pages), meta["anomalies"]

    # ---- movements ----------------------------------------------------------------------------

    async def move(self, movement: Movement, *, deadline: float | None = None) -> MovementResult:
        """Top up, refund or adjust one wallet (idempotent by key)."""
        self._check_movement(movement)
        key = f"move:{movement.key}"
        payload_sha256 = sha256(movement.canonical())
        async with self._keys.hold(key):
            row = await self._find(key)
            if row is None:
                await self._store_ready()
                _check_deadline(deadline)
                work = self._spawn(self._commit_movement(key, movement, payload_sha256, deadline))
                row, result = await asyncio.shield(work)
                if result is not None:
                    return result
            check_replay(row, movement.kind, payload_sha256, movement.key)
            return MovementResult.from_bytes(await self._settled_result(row))

    async def _commit_movement(self, key: str, movement: Movement, payload_sha256: bytes,
                               deadline: float | None) -> tuple[OpRow, MovementResult | None]:
        entries = Entries.one(movement.account_id, movement.wallet, movement.change_minor)
        floor = (movement.account_id, movement.wallet, 0) if movement.kind == "refund" else None
        op = NewOp(key, movement.kind, payload_sha256, entries, request=movement.canonical(),
                   floor=floor, created_us=self._now_us())
        try:
            row, created = await self.ledger.commit(op)
        except LedgerUnavailable as exc:
            raise errors.Unavailable(f"ledger: {exc}") from exc
        except BalanceOutOfRange as exc:
            raise _balance_limit(exc, idempotency_key=movement.key) from None
        except LimitExceeded as exc:
            raise errors.InsufficientBalance(
                f"refund of {movement.amount_minor} exceeds the balance {exc.balance_minor} of "
                f"wallet {movement.wallet!r} of account {movement.account_id!r}",
                balance_minor=exc.balance_minor, amount_minor=movement.amount_minor) from None
        if not created:
            return row, None
        applied = await self._apply_committed(row, entries, deadline=deadline)
        result = MovementResult(movement.key, row.seq, movement.account_id, movement.wallet,
                                movement.change_minor, int(applied.balances_minor[0]),
                                Status(int(applied.statuses[0])), applied.events)
        self._settle_later(Settlement(row.seq, result.to_bytes(), applied.events))
        return row, result

    def _check_movement(self, m: Movement) -> None:
        check_key(m.key, "idempotency_key")
        if m.kind not in MOVEMENT_KINDS:
            raise errors.InvalidArgument(f"unknown movement {m.kind!r}")
        self._check_account(m.account_id)
        self._check_wallet(m.wallet)
        if m.method and m.method not in PAYMENT_METHODS:
            raise errors.InvalidArgument(
                f"unknown payment method {m.method!r}; use {', '.join(PAYMENT_METHODS)}", field="method")
        if m.kind == "adjust":
            if m.amount_minor == 0:
                raise errors.InvalidArgument("an adjustment must not be 0", field="amount_minor")
            if not m.reason:
                raise errors.InvalidArgument("an adjustment needs a reason", field="reason")
        elif m.amount_minor <= 0:
            raise errors.InvalidArgument(f"a {m.kind} amount must be positive", field="amount_minor")
        if abs(m.amount_minor) > AMOUNT_LIMIT_MINOR:
            raise errors.InvalidArgument("amount_minor is above 2^53 - 1", field="amount_minor")

    def _check_account(self, account_id: str) -> None:
        if account_id not in self.config.registry.accounts:
            raise errors.NotFound(f"unknown account {account_id!r}", account_id=account_id)

    def _check_wallet(self, wallet: str) -> None:
        try:
            check_wallet_name(wallet)
        except ValueError as exc:
            raise errors.InvalidArgument(str(exc), field="wallet") from None
        if wallet not in self.wallet_names:
            raise errors.InvalidArgument(
                f"unknown wallet {wallet!r}; this site has {', '.join(self.wallet_names)}", field="wallet")

    # ---- deferred cut-offs --------------------------------------------------------------------

    async def sweep(self) -> list[Event]:
        """Cut off deferred wallets whose friendly hours are over."""
        if await self.store.deferred_count() == 0:
            return []
        policies, friendly = self._policies(self.wallet_names)
        cutting = [*policies.values(), *self.policy.overrides.values()]
        if all(friendly[p.name] for p in cutting if p.cut_off):
            return []
        now_us = self._now_us()
        row, _ = await self.ledger.commit(NewOp(f"sweep:{now_us}", "sweep", b"", Entries.empty(),
                                                created_us=now_us))
        await self.flush()  # the operations answered before it get their event ids first
        async with self._store_gate:
            return await self._finish_sweep(row)

    async def _finish_sweep(self, row: OpRow) -> list[Event]:
        policies, friendly = self._policies(self.wallet_names)
        try:
            changed, applied = await self.store.sweep(row.seq, policies, friendly, self.policy.overrides)
        except StoreUnavailable as exc:
            self._store_trouble(exc)
            raise errors.Unavailable(f"balance store: {exc}", committed=True) from exc
        events = self._stamp(applied.events, "sweep")
        result = json.dumps([[c.account_id, c.wallet, c.balance_minor, int(c.status)] for c in changed])
        await self.ledger.settle([Settlement(row.seq, result.encode(), events)])
        with contextlib.suppress(StoreUnavailable):
            await self.store.forget([row.seq])
        await self._notify_events()
        return events

    # ---- queries ------------------------------------------------------------------------------

    async def balance(self, account_id: str) -> list[tuple[WalletState, WalletPolicy]]:
        self._check_account(account_id)
        try:
            held = {s.wallet: s for s in await self.store.wallets(account_id)}
        except StoreUnavailable as exc:
            self._store_trouble(exc)
            raise errors.Unavailable(f"balance store: {exc}") from exc
        for meter_wallet in self.meter_wallets.get(account_id, ()):
            if meter_wallet not in held:
                held[meter_wallet] = self._unfunded(account_id, meter_wallet)
        return [(held[w], self.policy.of(w, account_id)) for w in sorted(held)]

    def _unfunded(self, account_id: str, wallet: str) -> WalletState:
        """A meter's wallet that no operation has touched: at 0, in the state
        the rule gives 0 (low when 0 is below its low-balance threshold)."""
        policy = self.policy.of(wallet, account_id)
        return WalletState(account_id, wallet, 0, status_after_rebuild(policy, None, 0))

    async def list_balances(self, where: BalanceFilter, page_size: int, page_token: str = ""
                            ) -> tuple[list[tuple[str, list[tuple[WalletState, WalletPolicy]]]], str]:
        """Accounts (in id order) with their wallets that pass `where`; a page
        starts after the account `page_token` names."""
        page_size = min(page_size or 1000, self.limits.page_size_max)
        by_account: dict[str, list] = {}
        held: set[tuple[str, str]] = set()
        try:
            async for page in self.store.scan():
                for s in page:
                    held.add((s.account_id, s.wallet))
                    self._list_if(where, page_token, s, by_account)
        except StoreUnavailable as exc:
            self._store_trouble(exc)
            raise errors.Unavailable(f"balance store: {exc}") from exc
        for account_id, wallets in self.meter_wallets.items():  # the wallets never funded, at 0
            for wallet in wallets:
                if (account_id, wallet) not in held:
                    self._list_if(where, page_token, self._unfunded(account_id, wallet), by_account)
        accounts = sorted(by_account)
        shown = accounts[:page_size]
        token = shown[-1] if len(accounts) > page_size else ""
        return [(a, sorted(by_account[a], key=lambda sp: sp[0].wallet)) for a in shown], token

    def _list_if(self, where: BalanceFilter, page_token: str, s: WalletState, by_account: dict) -> None:
        """Add `s` to `by_account` if it passes `where` and comes after `page_token`."""
        if page_token and s.account_id <= page_token:
            return
        if where.wallet and s.wallet != where.wallet:
            return
        policy = self.policy.of(s.wallet, s.account_id)
        if where.below_threshold and not s.balance_minor < policy.low_balance_minor:
            return
        if where.statuses and s.status not in where.statuses:
            return
        by_account.setdefault(s.account_id, []).append((s, policy))

    async def events(self, after: int = 0, *, types: tuple[int, ...] = (), account_id: str = "",
                     stop_at_end: bool = False, poll_s: float = 1.0) -> AsyncIterator[Event]:
        """Events after the cursor `after`, then new ones as they are recorded."""
        cursor = after
        while True:
            rows = await self.ledger.events_after(cursor, types=types, account_id=account_id)
            for event in rows:
                cursor = event.cursor
                yield event
            if rows:
                continue
            if stop_at_end:
                return
            async with self._events_changed:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._events_changed.wait(), poll_s)

    async def load_config(self, *, site_toml: str = "", tariffs_toml: tuple[str, ...] = (),
                          meters: bytes = b"", accounts: bytes = b"") -> int:
        """Replace parts of the configuration; meter state carries over by meter id."""
        try:
            docs = self.docs.merged(site_toml=site_toml, tariffs_toml=tariffs_toml, meters=meters,
                                    accounts=accounts)
            config, policy = docs.build()
        except RatingError as exc:
            raise errors.InvalidArgument.of(exc) from None
        while True:  # let the rated batches commit (or fail) first; a failing one takes the lock
            tail = self._commit_tail
            if tail is not None:
                await asyncio.wait([tail])
            await self._rating.acquire()
            if self._commit_tail is None or self._commit_tail.done():
                break
            self._rating.release()
        try:
            if self._planner_stale:
                await self._reload_meter_state()
            carried = self.planner.checkpoint()
            try:
                version = await self.ledger.save_config(docs.to_bytes())
            except LedgerUnavailable as exc:
                raise errors.Unavailable(f"ledger: {exc}") from exc
            self._install(docs)
            self.planner.restore([carried])
            self.config_version = version
        finally:
            self._rating.release()
        return version

    # ---- internals ----------------------------------------------------------------------------

    async def _entries_of(self, seq: int) -> Entries:
        try:
            return await self.ledger.entries_of(seq)
        except LedgerUnavailable as exc:
            raise errors.Unavailable(f"ledger: {exc}") from exc

    async def _find(self, key: str) -> OpRow | None:
        try:
            return await self.ledger.find(key)
        except LedgerUnavailable as exc:
            raise errors.Unavailable(f"ledger: {exc}") from exc

    async def _store_ready(self) -> None:
        """Refuse before committing (nothing applied) when the store is down: a
        ping before each operation (unless the store answered in the last
        STORE_FRESH_S) narrows "committed but not applied" to a store that
        dies in the moment between its last answer and the apply."""
        if time.monotonic() - self._store_answered_at < STORE_FRESH_S:
            return
        try:
            await self.store.ping()
        except StoreUnavailable as exc:
            raise errors.Unavailable(f"balance store: {exc}") from exc
        self._store_answered_at = time.monotonic()

    def _policies(self, wallets) -> tuple[dict[str, WalletPolicy], dict[str, bool]]:
        now = self.now()
        policies = {w: self.policy.of(w) for w in set(wallets)}
        site = self.config.site
        return policies, {w: p.is_friendly(now, site) for w, p in policies.items()}

    async def _apply_committed(self, row: OpRow, entries: Entries, *, deadline: float | None) -> Applied:
        """Apply an operation this process just committed; if the store stays
        down it is handed to the retry task and the caller gets Unavailable."""
        self._unsettled[row.seq] = asyncio.Event()
        try:
            return await self._apply(row, entries, deadline=deadline)
        except errors.Unavailable:
            self._stranded[row.seq] = (row, entries)
            self._stranded_signal.set()
            raise

    async def _retry_stranded_forever(self) -> None:
        while True:
            await self._stranded_signal.wait()
            self._stranded_signal.clear()
            while self._stranded:
                seq = min(self._stranded)
                row, entries = self._stranded[seq]
                try:
                    applied = await self._apply(row, entries, deadline=None)
                except errors.Unavailable:
                    await asyncio.sleep(0.5)
                    continue
                del self._stranded[seq]
                self._settle_later(Settlement(seq, self._result_of(row, entries, applied), applied.events))
                log.info("applied operation %d after the balance store came back", seq)

    async def _apply(self, row: OpRow, entries: Entries, *, deadline: float | None) -> Applied:
        """Apply a committed operation to the store, retrying until the deadline."""
        policies, friendly = self._policies(entries.wallets)
        overrides = self.policy.overrides_of(entries.account_ids, entries.wallets)
        give_up = time.monotonic() + self.limits.apply_retry_s
        if deadline is not None:
            give_up = min(give_up, deadline)
        pause = 0.01
        while True:
            try:
                applied = await self.store.apply(row.seq, entries, policies, friendly, overrides)
                self._store_answered_at = time.monotonic()
                break
            except StoreUnavailable as exc:
                self._store_trouble(exc)
                if time.monotonic() + pause > give_up:
                    raise errors.Unavailable(
                        f"balance store: {exc}; the operation is committed and will be applied when "
                        "the store is back: retry with the same id for its result",
                        committed=True, sequence=str(row.seq)) from exc
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.5)
        cause = row.key.split(":", 1)[1]
        return Applied(applied.balances_minor, applied.statuses, self._stamp(applied.events, cause))

    def _stamp(self, events: list[Event], cause: str) -> list[Event]:
        at_us = self._now_us()
        return [Event(e.type, e.account_id, e.wallet, e.balance_minor, at_us, cause) for e in events]

    def _now_us(self) -> int:
        return int(round(self._clock() * 1_000_000))

    def now(self) -> dt.datetime:
        """The server's clock, as the reading window and cut-off hours see it."""
        return dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc)

    def _settle_later(self, item: Settlement) -> None:
        self._settle_queue.put_nowait(item)

    async def _settle_forever(self) -> None:
        queue = self._settle_queue
        while True:
            items = [await queue.get()]
            while not queue.empty() and len(items) < self.limits.settle_batch_max:
                items.append(queue.get_nowait())
            pause = 0.05
            while True:
                try:
                    async with self._store_gate:
                        await self.ledger.settle(items)
                        with contextlib.suppress(StoreUnavailable):
                            await self.store.forget([i.seq for i in items])
                    break
                except Exception as exc:  # keep trying: the answers went out, the results must land
                    log.warning("settling %d operations failed (%s); retrying", len(items), exc)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 5.0)
            for item in items:
                waiter = self._unsettled.pop(item.seq, None)
                if waiter is not None:
                    waiter.set()
                queue.task_done()
            await self._notify_events()

    async def _maintain_forever(self) -> None:
        while True:
            await asyncio.sleep(self.limits.maintain_every_s)
            try:
                await self.ledger.maintain()
            except Exception as exc:  # upkeep only: the next round tries again
                log.warning("ledger upkeep failed (%s); trying again later", exc)

    async def _notify_events(self) -> None:
        async with self._events_changed:
            self._events_changed.notify_all()


def _observed(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()


def _balance_limit(exc: BalanceOutOfRange, **metadata: str) -> errors.BalanceLimit:
    return errors.BalanceLimit(str(exc), account_id=exc.account_id, wallet=exc.wallet,
                               balance_minor=exc.balance_minor, limit_minor=BALANCE_LIMIT_MINOR, **metadata)


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise errors.DeadlineExceeded("deadline passed before the operation was committed")
