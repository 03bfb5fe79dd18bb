"""Deduction planning: a batch of readings -> one debit per account wallet.

The planner owns the server's Rater. `plan` rates a batch on top of the
carried meter state; the Rater gives the money it adds (after − before, the
rating core's cumulative-difference rule: Rater.added_amounts) and the
after-image of what it moved (Rater.image_of); the planner maps the amounts
to (account, wallet) and returns them as ledger entries. The Rater has then
moved; the caller either keeps the move (the ledger committed: `finished`)
or calls `rollback`, which takes back that plan and every plan made after it.

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
from rating.engine import BatchUndo, Rater
from rating.errors import AmountOverflowError
from rating.prepaid.meterstate import StateImage, image_table, rater_image
from rating.prepaid.records import AnomalyPages, Entries, SentBatch
from rating.prepaid.wallets import AMOUNT_LIMIT_MINOR, PrepaidPolicy
from rating.pricing.lines import LineAmounts


def wallets_of(config: Config, policy: PrepaidPolicy) -> list[str]:
    """The wallets a deduction may debit: the meters' and the account lines' one."""
    return sorted({m.wallet for m in config.registry.meters} | {policy.account_lines_wallet})


@dataclass(frozen=True)
class Plan:
    entries: Entries  # signed balance changes: minus what each wallet is debited
    anomalies: pa.Table
    anomaly_pages: AnomalyPages  # the same, cut into pages and encoded (once) for the ledger and answer
    readings: int
    state: StateImage  # after-image of what the batch moved
    undo: BatchUndo  # how `rollback` takes the batch back


class DeductionPlanner:
    def __init__(self, config: Config, policy: PrepaidPolicy, *, anomaly_rows_max: int = 10_000):
        self.config = config
        self.policy = policy
        self.anomaly_rows_max = anomaly_rows_max
        self.rater = Rater(config, unknown_meters="error")
        registry = config.registry
        # Sorted, so that a batch's entries come out ordered by (account, wallet)
        # as the ledger lists them back (Ledger.entries_of).
        self.account_ids = sorted(registry.accounts)
        self.wallet_names = wallets_of(config, policy)
        wallet_code = {w: i for i, w in enumerate(self.wallet_names)}
        self._wallet_of_meter = np.array([wallet_code[m.wallet] for m in registry.meters], dtype=np.int64)
        self._lines_wallet = wallet_code[policy.account_lines_wallet]
        self._outstanding: list[Plan] = []  # neither committed nor rolled back, oldest first

    def plan(self, batch: pa.Table | pa.RecordBatch | SentBatch, *, where: str = "readings",
             now: dt.datetime | None = None) -> Plan:
        """Rate `batch`; the Rater moves (see `rollback`). Every step costs in
        proportion to the batch and the periods it touches, not to all
        totals carried. `now`: the server's
        clock, for the reading window (Rater)."""
        if isinstance(batch, SentBatch):
            batch = batch.table
        rater = self.rater
        periods, anomalies, undo = rater.ingest_undoable(batch, where=where, row_offset=0, now=now)
        # The Rater numbers anomaly rows over everything it has rated; an answer names rows of its batch.
        anomalies = anomalies.set_column(0, "row", pc.subtract(anomalies.column("row"), undo.rows_seen))
        try:
            change = rater.change_of(periods, undo)
            entries = self._entries(rater.added_amounts(change))
            state = image_table(rater, rater.image_of(change))
            pages = AnomalyPages.cut(anomalies, self.anomaly_rows_max)
        except BaseException:
            rater.undo(undo)
            raise
        plan = Plan(entries, anomalies, pages, batch.num_rows, state, undo)
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
                assert self.rater.rows_seen == plan.undo.rows_seen, "the Rater is not back before the plan"
                return

    def checkpoint(self) -> StateImage:
        return image_table(self.rater, self.rater.image_of())

    def restore(self, images: list[StateImage]) -> None:
        self.rater.load([rater_image(self.rater, image) for image in images])
        self._outstanding = []

    def restore_stored(self, images: list[bytes]) -> None:
        """`restore` from images as the ledger keeps them (StateImage.to_bytes)."""
        self.restore([StateImage.from_bytes(image) for image in images])

    def _entries(self, added: LineAmounts) -> Entries:
        """The signed line amounts a batch adds, summed per (account, wallet)."""
        if len(added.amount_minor) == 0:
            return Entries.empty()
        meter = added.meter_index  # -1 on an account's own tariff lines
        wallet = np.where(meter >= 0, self._wallet_of_meter[np.maximum(meter, 0)], self._lines_wallet)
        # the pricer ranks accounts among the sorted account ids, as self.account_ids holds them
        keys, inverse = np.unique(added.account_rank * len(self.wallet_names) + wallet, return_inverse=True)
        debit = np.zeros(len(keys), dtype=np.int64)
        np.add.at(debit, inverse, added.amount_minor)
        nonzero = debit != 0
        keys, debit = keys[nonzero], debit[nonzero]
        if len(debit) and np.abs(debit).max() > AMOUNT_LIMIT_MINOR:
            raise AmountOverflowError("a wallet's deduction exceeds 2^53 minor units")
        n_wallets = len(self.wallet_names)
        account_ids = [self.account_ids[k] for k in (keys // n_wallets).tolist()]
        wallets = [self.wallet_names[k] for k in (keys % n_wallets).tolist()]
        return Entries(account_ids, wallets, -debit)
