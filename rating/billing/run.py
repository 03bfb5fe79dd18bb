"""A site's bill run: draft a cycle (pure, re-run at will), issue it (once).

`draft_cycle` reads the open dues from the ledger and computes every
covered unit's draft (rating.billing.compute); it writes nothing, and the
same inputs and ledger give the same drafts. `issue_cycle` drafts and
issues in one go: numbers, entries and audit in one ledger transaction. An
issued cycle is never drafted again (its own entries would turn into its
arrears): issuing it again returns its first result, drafting it is refused.
Runs go forward: a cycle before or overlapping an issued one is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from rating.billing.allocation import AllocationRule
from rating.billing.compute import check_accounts, draft_bill
from rating.billing.cycles import accounts_in_run
from rating.billing.documents import Cycle, DraftBill, OneOffItem, Unit, UsageLine
from rating.billing.ledger import CycleOverlap, DuesLedger, IssueBatch, OpResult
from rating.billing.numbering import Numbering
from rating.billing.rules import BillingConfig
from rating.errors import RatingError


class CycleIssued(RatingError):
    """A draft of a cycle that is issued: its bills are final."""

    reason = "CYCLE_ISSUED"


@dataclass(frozen=True)
class RunInputs:
    run: Cycle  # the run's days; each unit's own cycle comes from accounts_in_run
    billing: BillingConfig
    numbering: Numbering
    units: Sequence[Unit]
    usage: Mapping[str, Sequence[UsageLine]] = field(default_factory=dict)  # outside a unit's cycle: left out
    items: Mapping[str, Sequence[OneOffItem]] = field(default_factory=dict)
    rules_text: str = ""
    allocation: AllocationRule | None = None  # how advances pay the issued bills (payments.toml)

    @property
    def key(self) -> str:
        return f"issue:{self.run.site_id}:{self.run.cycle_id}"


Offload = Callable[..., Awaitable[list[DraftBill]]]  # offload(fn, *args): fn(*args), awaited elsewhere


async def draft_cycle(ledger: DuesLedger, inputs: RunInputs, *, offload: Offload | None = None
                      ) -> list[DraftBill]:
    """Every covered unit's draft, in account order. `offload` runs the
    computing part (e.g. asyncio.to_thread: a server's loop keeps serving)."""
    await _check_forward(ledger, inputs.run)
    dues = await ledger.open_items(inputs.run.site_id)
    paid = await ledger.paid_late(inputs.run.site_id, inputs.run.period_end)
    if offload is None:
        return _drafts(inputs, dues, paid)
    return await offload(_drafts, inputs, dues, paid)


def _drafts(inputs: RunInputs, dues: Mapping, paid: Mapping) -> list[DraftBill]:
    covered = accounts_in_run(inputs.run, inputs.units, inputs.billing.site.default_cycle)
    check_accounts(inputs.billing, covered)
    drafts = [draft_bill(cycle, unit, inputs.billing, _within(cycle, inputs.usage.get(unit.account_id, ())),
                         dues.get(unit.account_id, ()), items=inputs.items.get(unit.account_id, ()),
                         paid=paid.get(unit.account_id, ()))
              for unit, cycle in covered]
    return sorted(drafts, key=lambda d: d.account_id)


def _within(cycle: Cycle, usage: Sequence[UsageLine]) -> Sequence[UsageLine]:
    """The usage lines of the unit's own cycle (readings files may hold other months)."""
    first, last = cycle.period_start, cycle.period_end
    if all(first <= line.period_start and line.period_end <= last for line in usage):
        return usage
    return [line for line in usage if first <= line.period_start and line.period_end <= last]


async def issue_cycle(ledger: DuesLedger, inputs: RunInputs, *, actor: str,
                      offload: Offload | None = None) -> OpResult:
    """Issue the cycle once; an issued cycle returns its first result (replayed)."""
    first = await ledger.find(inputs.key)
    if first is not None:
        return OpResult(first.seq, first.key, first.kind, first.summary, replayed=True)
    drafts = await draft_cycle(ledger, inputs, offload=offload)
    run = inputs.run
    return await ledger.issue(IssueBatch(inputs.key, run.site_id, run.cycle_id, run.period_start,
                                         run.period_end, run.bill_date, drafts, inputs.numbering, actor,
                                         inputs.rules_text, inputs.allocation))


async def _check_forward(ledger: DuesLedger, run: Cycle) -> None:
    for issued in await ledger.cycles(run.site_id):
        if issued.cycle_id == run.cycle_id:
            raise CycleIssued(f"issued already in site {run.site_id!r} (operation #{issued.seq}); its "
                              "bills are final: correct them with credit or debit notes",
                              where=f"cycle {run.cycle_id}")
        if issued.period_end >= run.period_start:
            what = "overlaps" if issued.period_start <= run.period_end else "comes before"
            raise CycleOverlap(f"cycle {run.cycle_id} {what} the issued cycle {issued.cycle_id} of site "
                               f"{run.site_id!r}; runs go forward, nothing was written",
                               where=f"cycle {run.cycle_id}")
