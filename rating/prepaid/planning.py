"""Deduction planning: a batch of readings -> one debit per account wallet.

The planner owns the server's Rater. `plan` rates a batch on top of the
carried meter state (the rating core's cumulative-difference rule: the
charge of a touched period after the batch minus before it), sums the
difference per (account, wallet) and returns the ledger entries together
with the after-image of the meter state. The Rater has then moved; the
caller either keeps the move (the ledger committed) or calls `rollback`.

Each meter debits its own wallet (registry column `wallet`); an account's
own tariff lines (maintenance, parking, ...) debit the policy's
`account_lines_wallet`. Because every deduction is after − before of the
same pricing function, the deductions of a period's batches sum exactly to
rating the whole period at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.config import Config
from rating.engine import Rater, RaterState
from rating.errors import AmountOverflowError
from rating.fixedpoint import decimal_units
from rating.period_totals import PeriodTotals
from rating.prepaid.meterstate import StateImage, checkpoint_of, image_of, moved_meters, restore
from rating.prepaid.records import Entries
from rating.prepaid.wallets import AMOUNT_LIMIT_MINOR, PrepaidPolicy
from rating.pricing import PeriodQuantities, price_periods
from rating.readings import meter_indexes

_PERIOD_OFFSET = 1 << 31  # period_start is int32 days; shifted non-negative inside a key


@dataclass(frozen=True)
class Plan:
    entries: Entries  # signed balance changes: minus what each wallet is debited
    anomalies: pa.Table
    readings: int
    state: StateImage  # after-image of what the batch moved
    before: RaterState  # where `rollback` goes back to


class DeductionPlanner:
    def __init__(self, config: Config, policy: PrepaidPolicy):
        self.config = config
        self.policy = policy
        self.rater = Rater(config, unknown_meters="error")
        registry = config.registry
        self.account_ids = list(registry.accounts)
        self._accounts = pa.array(self.account_ids, type=pa.string())
        account_index = {a: i for i, a in enumerate(self.account_ids)}
        self.wallet_names = sorted({m.wallet for m in registry.meters} | {policy.account_lines_wallet})
        wallet_code = {w: i for i, w in enumerate(self.wallet_names)}
        self._wallet_of_meter = np.array([wallet_code[m.wallet] for m in registry.meters], dtype=np.int64)
        self._account_of_meter = np.array([account_index[m.account_id] for m in registry.meters],
                                          dtype=np.int64)
        self._lines_wallet = wallet_code[policy.account_lines_wallet]

    def plan(self, batch: pa.Table | pa.RecordBatch, *, where: str = "readings") -> Plan:
        """Rate `batch`; the Rater moves (see `rollback`)."""
        rater = self.rater
        # The Rater replaces its arrays on every batch and never writes into
        # them, so references are a snapshot (no 6 MB copy per batch).
        before = RaterState(rater.states, rater.totals, rater.rows_seen)
        periods, anomalies = rater.ingest(batch, where=where, row_offset=0)
        try:
            entries = self._entries(periods, before)
            moved = moved_meters(before.meter_states, rater.states)
            state = image_of(rater, moved, periods)
        except BaseException:
            rater.restore(before)
            raise
        return Plan(entries, anomalies, batch.num_rows, state, before)

    def rollback(self, plan: Plan) -> None:
        """Go back to before `plan` (and so before every later plan)."""
        self.rater.restore(plan.before)

    def checkpoint(self) -> StateImage:
        return checkpoint_of(self.rater)

    def restore(self, images: list[StateImage]) -> None:
        restore(self.rater, images)

    def _entries(self, periods: PeriodQuantities, before: RaterState) -> Entries:
        if len(periods.meter_index) == 0:
            return Entries.empty()
        wanted = self._account_period_keys(periods)
        after_keys, after_minor = self._sums(self._whole_accounts(self.rater.totals, wanted))
        before_keys, before_minor = self._sums(self._whole_accounts(before.totals, wanted))
        keys, inverse = np.unique(np.concatenate([after_keys, before_keys]), return_inverse=True)
        debit = np.zeros(len(keys), dtype=np.int64)
        np.add.at(debit, inverse, np.concatenate([after_minor, -before_minor]))
        nonzero = debit != 0
        keys, debit = keys[nonzero], debit[nonzero]
        if len(debit) and np.abs(debit).max() > AMOUNT_LIMIT_MINOR:
            raise AmountOverflowError("a wallet's deduction exceeds 2^53 minor units")
        n_wallets = len(self.wallet_names)
        accounts = [self.account_ids[k] for k in (keys // n_wallets).tolist()]
        wallets = [self.wallet_names[k] for k in (keys % n_wallets).tolist()]
        return Entries(accounts, wallets, -debit)

    def _account_period_keys(self, periods: PeriodQuantities) -> np.ndarray:
        account = self._account_of_meter[periods.meter_index]
        return (account << 32) | (periods.period_start.astype(np.int64) + _PERIOD_OFFSET)

    def _whole_accounts(self, totals: PeriodTotals, wanted: np.ndarray) -> PeriodQuantities:
        """The carried totals of every meter of each (account, period) in
        `wanted`: an account's own lines (area charge, fees, minimum) depend
        on all of its meters, so they are priced together (as Rater.feed does)."""
        mine = totals.as_quantities()
        hit = np.isin(self._account_period_keys(mine), wanted)
        return PeriodQuantities(meter_index=mine.meter_index[hit], period_start=mine.period_start[hit],
                                period_end=mine.period_end[hit], qty=mine.qty[hit])

    def _sums(self, periods: PeriodQuantities) -> tuple[np.ndarray, np.ndarray]:
        """(account, wallet) key and amount in minor units of every charge line."""
        if len(periods.meter_index) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        config = self.config
        lines = price_periods(periods, registry=config.registry, tariffs=config.tariffs, site=config.site)
        amount, _ = decimal_units(lines.column("amount"), config.site.minor_unit_exponent)
        meter = meter_indexes(lines.column("meter_id").combine_chunks(), config.registry)
        on_meter = meter >= 0
        account = np.where(
            on_meter, self._account_of_meter[np.where(on_meter, meter, 0)],
            pc.index_in(lines.column("account_id"), value_set=self._accounts)
            .fill_null(-1).to_numpy(zero_copy_only=False),
        )
        wallet = np.where(on_meter, self._wallet_of_meter[np.where(on_meter, meter, 0)], self._lines_wallet)
        return account * len(self.wallet_names) + wallet, amount
