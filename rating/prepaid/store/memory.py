"""In-process balance store: the embedded default.

Balances live in a dict and are lost with the process; the service rebuilds
them from the ledger every time it starts, so the ledger stays the only
thing that must survive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np

from rating.prepaid.records import Applied, Entries, Event, WalletState
from rating.prepaid.store.base import BalanceStore, Overrides, StoreMismatch, past_the_limit
from rating.prepaid.wallets import BALANCE_LIMIT_MINOR, Status, WalletPolicy, transition


class MemoryStore(BalanceStore):
    name = "memory"

    def __init__(self) -> None:
        self._cells: dict[str, dict[str, list]] = {}  # account -> wallet -> [balance, Status, alarm | None]
        self._deferred: set[tuple[str, str]] = set()
        self._done: dict[int, Applied] = {}
        self._swept: dict[int, tuple[list[WalletState], Applied]] = {}
        self._marker: tuple[str | None, int] | None = None  # (epoch, last sequence); None: never built

    async def apply(self, seq: int, entries: Entries, policies: dict[str, WalletPolicy],
                    friendly: dict[str, bool], overrides: Overrides | None = None) -> Applied:
        self._check_marker()
        done = self._done.get(seq)
        if done is not None:
            return done
        n = len(entries)
        rows = list(zip(entries.account_ids, entries.wallets, entries.changes_minor.tolist(), strict=True))
        self._check_range(rows)
        balances = np.empty(n, dtype=np.int64)
        statuses = np.empty(n, dtype=np.int8)
        events = []
        for i, (account, wallet, delta) in enumerate(rows):
            cell = self._cells.setdefault(account, {}).setdefault(wallet, [0, Status.OK, None])
            policy = (overrides.get((account, wallet)) if overrides else None) or policies[wallet]
            alarm = policy.alarm_of(cell[1], cell[0]) if cell[2] is None else cell[2]
            cell[0] += delta
            status, cell[2], kinds = transition(policy, cell[1], cell[0], friendly[wallet], alarm)
            self._set_status(account, wallet, cell, status)
            balances[i], statuses[i] = cell[0], status
            events += [Event(kind, account, wallet, cell[0], level_minor=level) for kind, level in kinds]
        applied = Applied(balances, statuses, events)
        self._done[seq] = applied
        self._applied(seq)
        return applied

    async def sweep(self, seq: int, policies: dict[str, WalletPolicy],
                    friendly: dict[str, bool], overrides: Overrides | None = None
                    ) -> tuple[list[WalletState], Applied]:
        self._check_marker()
        done = self._swept.get(seq)
        if done is not None:
            return done
        changed, events = [], []
        for account, wallet in sorted(self._deferred):
            if friendly.get(wallet, True):
                continue
            cell = self._cells[account][wallet]
            policy = (overrides.get((account, wallet)) if overrides else None) or policies[wallet]
            alarm = policy.alarm_of(cell[1], cell[0]) if cell[2] is None else cell[2]
            status, cell[2], kinds = transition(policy, cell[1], cell[0], False, alarm)
            self._set_status(account, wallet, cell, status)
            changed.append(WalletState(account, wallet, cell[0], status))
            events += [Event(kind, account, wallet, cell[0], level_minor=level) for kind, level in kinds]
        result = (changed, Applied(np.array([c.balance_minor for c in changed], dtype=np.int64),
                                   np.array([c.status for c in changed], dtype=np.int8), events))
        self._swept[seq] = result
        self._applied(seq)
        return result

    async def deferred_count(self) -> int:
        return len(self._deferred)

    async def wallets(self, account_id: str) -> list[WalletState]:
        self._check_marker()
        wallets = self._cells.get(account_id, {})
        return [WalletState(account_id, w, cell[0], Status(cell[1])) for w, cell in sorted(wallets.items())]

    async def scan(self, page_size: int = 1000) -> AsyncIterator[list[WalletState]]:
        self._check_marker()
        items = [WalletState(a, w, cell[0], Status(cell[1]))
                 for a, wallets in self._cells.items() for w, cell in wallets.items()]
        for start in range(0, len(items), page_size):
            yield items[start:start + page_size]

    async def marker_state(self, ledger_seq: int) -> str:
        if self._marker is None:
            return "missing"
        if self._marker[0] != self.epoch:
            return "foreign"
        return "ahead" if self._marker[1] > ledger_seq else "ok"

    def _check_marker(self) -> None:
        if self.epoch is not None and (self._marker is None or self._marker[0] != self.epoch):
            raise StoreMismatch("the in-process store was not built from this ledger",
                                foreign=self._marker is not None)

    def _applied(self, seq: int) -> None:
        if self._marker is not None and seq > self._marker[1]:
            self._marker = (self._marker[0], seq)

    async def replace_all(self, states: list[WalletState], *, seq: int = 0) -> None:
        self._marker = (self.epoch, seq)
        self._cells = {}
        for s in states:
            # no alarm recorded: the next change takes the policy's alarm_of the state
            self._cells.setdefault(s.account_id, {})[s.wallet] = [s.balance_minor, Status(s.status), None]
        self._deferred = {(s.account_id, s.wallet) for s in states if s.status == Status.CUT_OFF_DEFERRED}
        self._done.clear()
        self._swept.clear()

    async def forget(self, seqs: list[int]) -> None:
        for seq in seqs:
            self._done.pop(seq, None)
            self._swept.pop(seq, None)

    async def ping(self) -> None:
        return None

    def _check_range(self, rows: list[tuple[str, str, int]]) -> None:
        """Every balance after the entries within the limit, or nothing applied
        (apply does not await: the event loop makes it atomic)."""
        after: dict[tuple[str, str], int] = {}
        for account, wallet, delta in rows:
            pair = (account, wallet)
            balance = after.get(pair)
            if balance is None:
                balance = self._cells.get(account, {}).get(wallet, (0,))[0]
            after[pair] = balance = balance + delta
            if abs(balance) > BALANCE_LIMIT_MINOR:
                raise past_the_limit(account, wallet, balance)

    def _set_status(self, account: str, wallet: str, cell: list, status: Status) -> None:
        cell[1] = status
        if status == Status.CUT_OFF_DEFERRED:
            self._deferred.add((account, wallet))
        else:
            self._deferred.discard((account, wallet))
