"""Reconcile: prove that the balance store holds exactly the ledger's balances.

`rating reconcile` runs this against the configured backends; `rating
rebuild` (rating.prepaid.service.PrepaidService.rebuild_store) makes the
store equal to the ledger when it is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rating.prepaid.ledger.base import Ledger
from rating.prepaid.store.base import BalanceStore


@dataclass(frozen=True)
class Mismatch:
    account_id: str
    wallet: str
    store_minor: int
    ledger_minor: int


@dataclass(frozen=True)
class Report:
    wallets: int  # wallets compared
    total_minor: int  # sum of every ledger balance
    pending: int  # committed operations not settled yet (in flight, or left by a crash)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def lines(self, limit: int = 20) -> list[str]:
        out = [f"{self.wallets} wallets, ledger total {self.total_minor} minor units, "
               f"{self.pending} operations pending, {len(self.mismatches)} mismatches"]
        for m in self.mismatches[:limit]:
            out.append(f"  {m.account_id} {m.wallet}: store {m.store_minor}, ledger {m.ledger_minor}")
        if len(self.mismatches) > limit:
            out.append(f"  ... and {len(self.mismatches) - limit} more")
        return out


async def reconcile(store: BalanceStore, ledger: Ledger) -> Report:
    """Compare every wallet's store balance with the sum of its ledger entries.
    A wallet missing on one side counts as 0 there."""
    in_ledger = {(a, w): b for a, w, b in await ledger.balances()}
    pending = len(await ledger.pending())
    in_store: dict[tuple[str, str], int] = {}
    async for page in store.scan():
        for s in page:
            in_store[(s.account_id, s.wallet)] = s.balance_minor
    mismatches = [
        Mismatch(a, w, in_store.get((a, w), 0), in_ledger.get((a, w), 0))
        for a, w in sorted(set(in_ledger) | set(in_store))
        if in_store.get((a, w), 0) != in_ledger.get((a, w), 0)
    ]
    return Report(len(set(in_ledger) | set(in_store)), sum(in_ledger.values()), pending, mismatches)
