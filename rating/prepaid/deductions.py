"""Deductions: a batch of readings rated on top of the carried meter state,
one debit per account wallet committed with the state it moved, then applied
(idempotent by batch id and the batch's content, idempotency.readings_sha256).
The order of batches is rating.prepaid.ordering's; this module runs one batch
through it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from rating.errors import RatingError
from rating.prepaid import errors
from rating.prepaid.applying import Applier
from rating.prepaid.core import Core, balance_limit, check_deadline
from rating.prepaid.idempotency import check_key, check_replay, readings_sha256
from rating.prepaid.ledger.base import BalanceOutOfRange, LedgerUnavailable, NewOp, OpRow, Settlement
from rating.prepaid.ordering import DeductionOrder, Place, StreamOrder, Turn, alone
from rating.prepaid.planner_process import PlannerGone, ProcessPlanner
from rating.prepaid.planning import DeductionPlanner
from rating.prepaid.records import DeductionResult, SentBatch, pack_parts

log = logging.getLogger("rating.prepaid")


@dataclass(frozen=True)
class Deduction:
    """A started deduction batch (PrepaidService.start_deduct)."""

    rated: asyncio.Future  # True once rated (or found to be a retry); False if it failed before
    result: asyncio.Future  # the DeductionResult, or the batch's error


class DeductionStream:
    """The batches of one stream (StreamDeduct): rated and committed in the
    order they are started. A batch is started as soon as it arrives: its
    lookups overlap the rating of the one before, its rating overlaps that
    one's commit and apply; a batch after a refused one is refused."""

    def __init__(self, deductions: Deductions):
        self._deductions = deductions
        self._order = StreamOrder()

    def start(self, batch_id: str, readings: pa.Table | SentBatch, *,
              deadline: float | None = None) -> Deduction:
        return self._deductions.start(batch_id, SentBatch.of(readings), deadline, self._order.next_place())


class Deductions:
    def __init__(self, core: Core, applier: Applier, *, rating_process: bool):
        self.core, self.applier = core, applier
        self.order = DeductionOrder()
        # Rate in a child process (rating.prepaid.planner_process) rather than on a thread.
        self._rating_process = rating_process
        self.planner: DeductionPlanner | ProcessPlanner  # made by new_planner, at start
        self._rating_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rating")
        self._since_checkpoint_batches = 0

    # ---- the planner --------------------------------------------------------------------------

    def new_planner(self) -> None:
        """A fresh planner for the configuration in force (its Rater is empty)."""
        self.close_planner()
        core = self.core
        if self._rating_process:
            self.planner = ProcessPlanner(core.docs.to_bytes(), core.postpaid_groups,
                                          anomaly_rows_max=core.limits.anomaly_rows_max)
        else:
            self.planner = DeductionPlanner(core.config, core.policy,
                                            anomaly_rows_max=core.limits.anomaly_rows_max)

    def close_planner(self) -> None:
        planner = getattr(self, "planner", None)
        if isinstance(planner, ProcessPlanner):
            planner.close()

    def close(self) -> None:
        self._rating_thread.shutdown(wait=True)
        self.close_planner()

    async def reload_meter_state(self) -> None:
        """The Rater as the ledger has it: the latest checkpoint and the images after it."""
        try:
            images = await self.core.ledger.meter_images()
        except LedgerUnavailable as exc:
            raise errors.Unavailable(f"ledger: {exc}") from exc
        self.planner.restore_stored(images)
        self.order.stale = False

    def _replace_lost_planner(self) -> None:
        """The planner process died: start another; the Rater comes back from the ledger."""
        log.error("the planner process died; starting a new one")
        self.new_planner()
        self.order.void()  # batches rated by the dead one are void

    # ---- one batch ----------------------------------------------------------------------------

    def start(self, batch_id: str, readings: SentBatch, deadline: float | None, place: Place) -> Deduction:
        """Start one batch: look its key up, rate it, commit it, apply it. Returns
        at once (see Deduction); rating runs on its own thread (or in the planner
        process) while the event loop moves commits and applies. If a commit
        fails, the Rater goes back to before that batch and the batches rated
        after it fail too (resend from it). Once started, an operation is not
        stopped by its caller going away."""
        return Deduction(place.rated, self.core.spawn(self._run(batch_id, readings, deadline, place)))

    def start_alone(self, batch_id: str, readings: pa.Table | SentBatch, deadline: float | None) -> Deduction:
        return self.start(batch_id, SentBatch.of(readings), deadline, alone())

    async def _run(self, batch_id: str, readings: SentBatch, deadline: float | None,
                   place: Place) -> DeductionResult:
        try:
            async with self.core.admitted():
                check_key(batch_id, "batch_id")
                payload_sha256 = await self._readings_sha256(batch_id, readings.table)
                key = f"batch:{batch_id}"
                plan, created = None, False
                async with self.core.keys.hold(key):  # until the commit is decided
                    row = await self.core.find(key)
                    if row is None:
                        plan, op, turn = await self._rate(key, batch_id, readings, payload_sha256, deadline,
                                                          place)
                        place.passed(True)
                        row, created = await self._commit(batch_id, plan, op, turn)
                place.passed(True)
                if not created:  # a retry, or another process committed this batch first
                    return await self._replay(row, payload_sha256, batch_id)
                return await self._apply(row, plan, deadline)
        finally:
            place.passed(False)  # refused before it was rated: so is the stream's next batch

    async def _readings_sha256(self, batch_id: str, readings: pa.Table) -> bytes:
        """The batch's content hash, off the event loop (a large batch takes milliseconds)."""
        try:
            return await asyncio.to_thread(readings_sha256, readings, self.core.config.site.quantity_decimals,
                                           where=f"batch {batch_id!r}")
        except RatingError as exc:
            raise errors.InvalidArgument.of(exc, batch_id=batch_id) from None

    async def _rate(self, key: str, batch_id: str, readings: SentBatch, payload_sha256: bytes,
                    deadline: float | None, place: Place):
        """Rate the batch in its turn; the Rater moves; returns the plan, the
        operation to commit and its turn in the commit chain."""
        rows_max = self.core.limits.batch_rows_max
        if readings.table.num_rows > rows_max:
            raise errors.TooLarge(f"batch has {readings.table.num_rows} readings; at most {rows_max}",
                                  limit="batch_rows_max")
        await self.core.store_ready()
        await place.wait_before(batch_id)
        async with self.order.rating():
            check_deadline(deadline)
            if self.order.stale:
                await self.reload_meter_state()
            try:
                plan, op = await asyncio.get_running_loop().run_in_executor(
                    self._rating_thread, self._plan, key, batch_id, readings, payload_sha256)
            except PlannerGone as exc:
                self._replace_lost_planner()
                raise errors.Unavailable(f"{exc}; it was restarted: resend", batch_id=batch_id) from None
            return plan, op, self.order.take_turn()

    def _plan(self, key: str, batch_id: str, readings: SentBatch, payload_sha256: bytes):
        """On the rating thread: the plan and the operation that commits it."""
        planner = self.planner
        try:
            plan = planner.plan(readings, where=f"batch {batch_id!r}", now=self.core.now())
        except RatingError as exc:
            raise errors.InvalidArgument.of(exc, batch_id=batch_id) from None
        self._since_checkpoint_batches += 1
        checkpoint = None
        if self._since_checkpoint_batches >= self.core.limits.checkpoint_every_batches:
            checkpoint = planner.checkpoint().to_bytes()
            self._since_checkpoint_batches = 0
        pages = plan.anomaly_pages
        head = {"batch_id": batch_id, "readings": plan.readings, **pages.summary()}
        request = pack_parts(json.dumps(head).encode(), pages.first_ipc)
        op = NewOp(key, "deduct", payload_sha256, plan.entries, request=request,
                   anomaly_pages=pages.later_zstd, meter_state=plan.state.to_bytes(), checkpoint=checkpoint,
                   created_us=self.core.now_us())
        return plan, op

    async def _commit(self, batch_id: str, plan, op: NewOp, turn: Turn) -> tuple[OpRow, bool]:
        """Commit in the batch's turn; a batch that did not commit is taken back."""
        try:
            async with self.order.committing(turn, batch_id):
                try:
                    row, created = await self.core.ledger.commit(op)
                except LedgerUnavailable as exc:
                    await self._take_back(plan)
                    raise errors.Unavailable(f"ledger: {exc}", batch_id=batch_id) from exc
                except BalanceOutOfRange as exc:
                    await self._take_back(plan)
                    raise balance_limit(exc, batch_id=batch_id) from None
                except BaseException:
                    await self._take_back(plan)
                    raise
                if not created:  # committed by another process: its state is in the ledger
                    await self._take_back(plan)
                return row, created
        finally:
            self.planner.finished(plan)

    async def _take_back(self, plan) -> None:
        """Back to before `plan` and every plan after it (ordering: taking_back)."""
        async with self.order.taking_back():
            try:
                self.planner.rollback(plan)
            except PlannerGone:
                self._replace_lost_planner()

    async def _apply(self, row: OpRow, plan, deadline: float | None) -> DeductionResult:
        applied = await self.applier.apply_committed(row, plan.entries, deadline=deadline)
        result = DeductionResult.of_commit(row, plan.entries, applied)
        self.applier.settle_later(Settlement(row.seq, result.to_bytes(), applied.events))
        return result

    async def _replay(self, row: OpRow, payload_sha256: bytes, batch_id: str) -> DeductionResult:
        check_replay(row, "deduct", payload_sha256, batch_id)
        result = await self.applier.settled_result(row)
        return DeductionResult.from_bytes(result, await self.core.entries_of(row.seq))
