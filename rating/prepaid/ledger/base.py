"""The ledger interface: the system of record of every movement.

An operation (a deduction batch, a top-up, refund or adjustment, a sweep of
deferred cut-offs) is committed once, in one transaction, with everything
that must advance together: its idempotency key (unique) and payload hash,
its entries (one immutable row per account wallet, signed, credit > 0) and,
for a deduction batch, the after-image of the meter state it moved and the
pages of its anomaly rows after the first (which is in its request). The
commit assigns the operation's sequence number; sequences increase in
commit order. A balance is the sum of its entries.

Once the balance store has applied an operation, `settle` records its result
(replayed to retries) and its balance events (each with an event id that
increases in commit order: the cursor of the event stream).

Backends: `rating.prepaid.ledger.sqlite` (a file, the embedded default) and
`rating.prepaid.ledger.postgres` (asyncpg, COPY). Both pass
tests/test_prepaid_contract.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from rating.prepaid import errors
from rating.prepaid.records import Entries, Event
from rating.prepaid.wallets import BALANCE_LIMIT_MINOR, EventType


class LedgerUnavailable(errors.Unavailable):
    """The ledger cannot be reached or refused the write; nothing was committed
    (an UNAVAILABLE answer wherever it is not caught first)."""


class LedgerBusy(Exception):
    """Another process holds the ledger (Ledger.claim); nothing was done."""


class LimitExceeded(Exception):
    """A movement would take a wallet below its floor; nothing was committed."""

    def __init__(self, account_id: str, wallet: str, balance_minor: int, floor_minor: int):
        self.account_id, self.wallet = account_id, wallet
        self.balance_minor, self.floor_minor = balance_minor, floor_minor
        super().__init__(f"wallet {wallet!r} of account {account_id!r} holds {balance_minor} minor units; "
                         f"the movement would take it below {floor_minor}")


class BalanceOutOfRange(Exception):
    """A movement would take a wallet past +-BALANCE_LIMIT_MINOR; nothing was committed."""

    def __init__(self, account_id: str, wallet: str, balance_minor: int, change_minor: int):
        self.account_id, self.wallet = account_id, wallet
        self.balance_minor, self.change_minor = balance_minor, change_minor
        super().__init__(f"wallet {wallet!r} of account {account_id!r} holds {balance_minor} minor units; "
                         f"{change_minor:+d} would take it past the balance limit of +-{BALANCE_LIMIT_MINOR}")


def abs_total_minor(entries: Entries) -> int:
    """The sum of the entries' absolute amounts (exact; each is below 2^53)."""
    amounts = entries.changes_minor
    if len(amounts) == 0:
        return 0
    if len(amounts) < 512:  # 512 * 2^53 < 2^63: the int64 sum cannot overflow
        return int(np.abs(amounts).sum())
    return sum(int(np.abs(part).sum()) for part in np.array_split(amounts, len(amounts) // 512 + 1))


class Headroom:
    """A bound on every wallet's |balance| that grows with each commit, so most
    commits prove they stay within BALANCE_LIMIT_MINOR without reading a
    balance: while the bound plus the commit's own absolute total fits, every
    wallet fits. Past that, the commit reads its wallets' balances in its
    transaction (check_range). The ledger's one writer (Ledger.claim) keeps
    it; a commit adds to it before its COMMIT, so a failed one only leaves it
    higher, which is safe."""

    def __init__(self, bound_minor: int = 0):
        self.bound_minor = bound_minor

    def fits(self, moved_minor: int) -> bool:
        return self.bound_minor + moved_minor <= BALANCE_LIMIT_MINOR

    def add(self, moved_minor: int) -> None:
        self.bound_minor += moved_minor


def wallet_changes(entries: Entries) -> dict[tuple[str, str], int]:
    """(account, wallet) -> the entries' net change of it."""
    changes: dict[tuple[str, str], int] = {}
    for pair, amount in zip(zip(entries.account_ids, entries.wallets, strict=True),
                            entries.changes_minor.tolist(), strict=True):
        changes[pair] = changes.get(pair, 0) + amount
    return changes


def check_range(balances, changes: dict[tuple[str, str], int]) -> None:
    """Raise BalanceOutOfRange if a change takes its wallet past the limit;
    `balances`: (account, wallet, balance) of the changed wallets (absent: 0)."""
    held = {(a, w): int(b) for a, w, b in balances}
    for (account, wallet), change in changes.items():
        balance = held.get((account, wallet), 0)
        if abs(balance + change) > BALANCE_LIMIT_MINOR:
            raise BalanceOutOfRange(account, wallet, balance, change)


@dataclass(frozen=True)
class NewOp:
    key: str  # idempotency key, unique across operations ("batch:<id>", "move:<key>", ...)
    kind: str  # "deduct", a movement kind (records.MOVEMENT_KINDS) or "sweep"
    payload_sha256: bytes
    entries: Entries
    request: bytes = b""  # what was asked (JSON), kept for audit
    meter_state: bytes | None = None  # StateImage after-image (deductions)
    checkpoint: bytes | None = None  # whole StateImage, now and then
    anomaly_pages: tuple[bytes, ...] = ()  # a deduction's anomaly pages after the first (1, 2, ...)
    # (account, wallet, floor): refuse the commit if the wallet's balance after
    # the entries would be below floor (refunds never overdraw).
    floor: tuple[str, str, int] | None = None
    created_us: int = 0


@dataclass(frozen=True)
class OpRow:
    seq: int
    key: str
    kind: str
    payload_sha256: bytes
    created_us: int
    applied: bool
    result: bytes | None
    request: bytes


@dataclass(frozen=True)
class Settlement:
    seq: int
    result: bytes
    events: list[Event]


class Ledger(ABC):
    name = "ledger"

    @abstractmethod
    async def open(self) -> None:
        """Connect and create the schema if it is missing."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def claim(self, owner: str, *, wait_s: float = 5.0) -> None:
        """Hold the ledger for this process until `close`: one server per
        ledger, since its Rater is the one copy of the meter state, and no
        `rebuild` while a server runs. A holder that dies lets go at once
        (its connection or its process is gone); a live one makes this raise
        LedgerBusy, naming it, after `wait_s`."""

    @abstractmethod
    async def identity(self) -> tuple[str, int]:
        """(epoch, last sequence): the epoch is a random id the ledger is
        created with and keeps for life (a store names it in its marker, so
        a store that mirrors another ledger is told apart); the last
        sequence is the newest operation committed (0: none)."""

    @abstractmethod
    async def find(self, key: str) -> OpRow | None: ...

    @abstractmethod
    async def commit(self, op: NewOp) -> tuple[OpRow, bool]:
        """Commit `op` atomically; returns (row, True). If its key exists,
        nothing is written and the existing row comes back with False.
        Raises LimitExceeded (the floor), BalanceOutOfRange (a wallet would
        pass +-BALANCE_LIMIT_MINOR) or LedgerUnavailable with nothing written."""

    @abstractmethod
    async def entries_of(self, seq: int) -> Entries:
        """An operation's entries ordered by (account_id, wallet), by code point."""

    @abstractmethod
    async def anomaly_page(self, seq: int, page: int) -> bytes:
        """Page `page` (1, 2, ...) of a deduction's anomaly rows, as committed."""

    @abstractmethod
    async def settle(self, items: list[Settlement]) -> None:
        """Record results and events of applied operations (one transaction)."""

    @abstractmethod
    async def pending(self) -> list[OpRow]:
        """Committed operations not yet settled, in sequence order."""

    @abstractmethod
    async def balances(self, *, settled_only: bool = False) -> list[tuple[str, str, int]]:
        """(account, wallet, sum of entries) of every wallet with entries."""


    @abstractmethod
    async def last_events(self) -> dict[tuple[str, str], EventType]:
        """The latest event type of every wallet that has events."""

    @abstractmethod
    async def events_after(self, cursor: int, *, limit: int = 1000, types: tuple[int, ...] = (),
                           account_id: str = "") -> list[Event]: ...

    @abstractmethod
    async def meter_images(self) -> list[bytes]:
        """The latest checkpoint (if any) and every meter after-image committed
        after it, oldest first."""

    @abstractmethod
    async def save_config(self, docs: bytes) -> int: ...

    @abstractmethod
    async def load_config(self) -> tuple[int, bytes] | None: ...

    async def maintain(self) -> None:  # noqa: B027 - optional for backends
        """Upkeep a backend wants now and then; the service calls it about once
        a second and it is cheap when there is nothing to do."""

    @abstractmethod
    async def counts(self) -> dict[str, int]:
        """Rows per table (ops, entries, events), for reports and tests."""
