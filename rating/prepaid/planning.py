"""Deduction planning: a batch of readings -> one debit per account wallet.

The planner owns the server's Rater. `plan` rates a batch on top of the
carried meter state (the rating core's cumulative-difference rule: the
charge of a touched period after the batch minus before it), sums the
difference per (account, wallet) and returns the ledger entries together
with the after-image of the meter state. The Rater has then moved; the
caller either keeps the move (the ledger committed: `finished`) or calls
`rollback`, which takes back that plan and every plan made after it.

Each meter debits its own wallet (registry column `wallet`); an account's
own tariff lines (maintenance, parking, ...) debit the policy's
`account_lines_wallet`. Because every deduction is after − before of the
same pricing function, the deductions of a period's batches sum exactly to
rating the whole period at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.config.loader import Config
from rating.consumption.period_totals import PeriodTotals
from rating.consumption.quantities import PeriodQuantities, index_key_bounds, period_keys
from rating.engine import BatchUndo, Rater
from rating.errors import AmountOverflowError
from rating.prepaid.meterstate import (
    StateImage,
    checkpoint_of,
    image_of,
    moved_meters,
    restore,
    take_rows,
)
from rating.prepaid.records import Entries
from rating.prepaid.wallets import AMOUNT_LIMIT_MINOR, PrepaidPolicy
from rating.pricing.pricer import price_line_amounts


@dataclass(frozen=True)
class Plan:
    entries: Entries  # signed balance changes: minus what each wallet is debited
    anomalies: pa.Table
    readings: int
    state: StateImage  # after-image of what the batch moved
    undo: BatchUndo  # how `rollback` takes the batch back


class DeductionPlanner:
    def __init__(self, config: Config, policy: PrepaidPolicy):
        self.config = config
        self.policy = policy
        self.rater = Rater(config, unknown_meters="error")
        registry = config.registry
        # Sorted, so that a batch's entries come out ordered by (account, wallet)
        # as the ledger lists them back (Ledger.entries_of).
        self.account_ids = sorted(registry.accounts)
        account_index = {a: i for i, a in enumerate(self.account_ids)}
        self.wallet_names = sorted({m.wallet for m in registry.meters} | {policy.account_lines_wallet})
        wallet_code = {w: i for i, w in enumerate(self.wallet_names)}
        self._wallet_of_meter = np.array([wallet_code[m.wallet] for m in registry.meters], dtype=np.int64)
        self._account_of_meter = np.array([account_index[m.account_id] for m in registry.meters],
                                          dtype=np.int64)
        self._lines_wallet = wallet_code[policy.account_lines_wallet]
        # the meters of each account, as ranges of one array (CSR)
        self._meters_by_account = np.argsort(self._account_of_meter, kind="stable")
        counts = np.bincount(self._account_of_meter, minlength=len(self.account_ids))
        self._account_start = np.concatenate([[0], np.cumsum(counts)])
        self._keys_cache: list[tuple[object, np.ndarray]] = []  # the last two totals' keys
        self._outstanding: list[Plan] = []  # neither committed nor rolled back, oldest first

    def plan(self, batch: pa.Table | pa.RecordBatch, *, where: str = "readings",
             now: dt.datetime | None = None) -> Plan:
        """Rate `batch`; the Rater moves (see `rollback`). Every step costs in
        proportion to the batch, not to the registry. `now`: the server's
        clock, for the reading window (Rater)."""
        rater = self.rater
        periods, anomalies, undo = rater.ingest_undoable(batch, where=where, row_offset=0, now=now)
        # The Rater numbers anomaly rows over everything it has rated; an answer names rows of its batch.
        anomalies = anomalies.set_column(0, "row", pc.subtract(anomalies.column("row"), undo.rows_seen))
        try:
            entries = self._entries(periods, undo.totals)
            moved = moved_meters(undo, rater.states)
            state = image_of(rater, moved, self._touched_rows(rater.totals, periods))
        except BaseException:
            rater.undo(undo)
            raise
        plan = Plan(entries, anomalies, batch.num_rows, state, undo)
        self._outstanding.append(plan)
        return plan

    def finished(self, plan: Plan) -> None:
        """The plan was committed (or voided after a rollback): it will never be taken back."""
        self._outstanding = [p for p in self._outstanding if p is not plan]

    def rollback(self, plan: Plan) -> None:
        """Go back to before `plan`, taking back every later plan too, newest first."""
        if not any(p is plan for p in self._outstanding):
            raise RuntimeError("that plan is committed or already rolled back")
        while True:
            last = self._outstanding.pop()
            self.rater.undo(last.undo)
            if last is plan:
                return

    def checkpoint(self) -> StateImage:
        return checkpoint_of(self.rater)

    def restore(self, images: list[StateImage]) -> None:
        restore(self.rater, images)
        self._outstanding = []

    def _entries(self, periods: PeriodQuantities, before: PeriodTotals) -> Entries:
        if len(periods.meter_index) == 0:
            return Entries.empty()
        # every meter of each touched account, and the touched (account, period) pairs
        accounts = np.unique(self._account_of_meter[periods.meter_index])
        lo, hi = self._account_start[accounts], self._account_start[accounts + 1]
        meters = self._meters_by_account[_ranges(lo, hi)].astype(np.int64)
        wanted = self._account_period_keys(periods)
        after_keys, after_minor = self._sums(self._whole_accounts(self.rater.totals, meters, wanted))
        before_keys, before_minor = self._sums(self._whole_accounts(before, meters, wanted))
        keys, inverse = np.unique(np.concatenate([after_keys, before_keys]), return_inverse=True)
        debit = np.zeros(len(keys), dtype=np.int64)
        np.add.at(debit, inverse, np.concatenate([after_minor, -before_minor]))
        nonzero = debit != 0
        keys, debit = keys[nonzero], debit[nonzero]
        if len(debit) and np.abs(debit).max() > AMOUNT_LIMIT_MINOR:
            raise AmountOverflowError("a wallet's deduction exceeds 2^53 minor units")
        n_wallets = len(self.wallet_names)
        account_ids = [self.account_ids[k] for k in (keys // n_wallets).tolist()]
        wallets = [self.wallet_names[k] for k in (keys % n_wallets).tolist()]
        return Entries(account_ids, wallets, -debit)

    def _sorted_keys(self, totals: PeriodTotals) -> np.ndarray:
        """The sorted (meter, period) keys of `totals`; the last two are cached,
        since this batch's "after" is the next batch's "before"."""
        for known, keys in self._keys_cache:
            if known is totals:
                return keys
        quantities = totals.as_quantities()
        keys = period_keys(quantities.meter_index, quantities.period_start)
        self._keys_cache = [*self._keys_cache[-1:], (totals, keys)]
        return keys

    def _touched_rows(self, totals: PeriodTotals, periods: PeriodQuantities) -> np.ndarray:
        """Rows of `totals` holding exactly the (meter, period) pairs of `periods`."""
        keys = self._sorted_keys(totals)
        wanted = period_keys(periods.meter_index, periods.period_start)
        rows = np.searchsorted(keys, wanted)
        found = rows < len(keys)
        found[found] = keys[rows[found]] == wanted[found]
        return rows[found]

    def _whole_accounts(self, totals: PeriodTotals, meters: np.ndarray,
                        wanted: np.ndarray) -> PeriodQuantities:
        """The carried totals of `meters` (every meter of each touched account)
        in the (account, period) pairs `wanted`: an account's own lines (area
        charge, fees, minimum) depend on all of its meters, so they are priced
        together (as Rater.feed does). Found by binary search over the sorted
        keys: no pass over all totals."""
        keys = self._sorted_keys(totals)
        low, high = index_key_bounds(meters)
        rows = _ranges(np.searchsorted(keys, low), np.searchsorted(keys, high))
        mine = take_rows(totals.as_quantities(), rows)
        return take_rows(mine, np.flatnonzero(np.isin(self._account_period_keys(mine), wanted)))

    def _account_period_keys(self, periods: PeriodQuantities) -> np.ndarray:
        account = self._account_of_meter[periods.meter_index]
        return period_keys(account, periods.period_start)

    def _sums(self, periods: PeriodQuantities) -> tuple[np.ndarray, np.ndarray]:
        """(account, wallet) key and amount in minor units of every charge line."""
        if len(periods.meter_index) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        config = self.config
        lines = price_line_amounts(periods, registry=config.registry, tariffs=config.tariffs,
                                   site=config.site)
        meter = lines.meter_index  # -1 on an account's own tariff lines
        wallet = np.where(meter >= 0, self._wallet_of_meter[np.maximum(meter, 0)], self._lines_wallet)
        # the pricer ranks accounts among the sorted account ids, as self.account_ids holds them
        return lines.account_rank * len(self.wallet_names) + wallet, lines.amount_minor


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], hi[i])."""
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return np.arange(total, dtype=np.int64) + starts
