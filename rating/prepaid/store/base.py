"""The balance store interface: hot balances and wallet states.

A store holds, per (account, wallet), the balance in minor units and the
wallet's state (rating.prepaid.wallets.Status). It is a cache of the ledger:
every change it makes is an operation the ledger has already committed,
named by the operation's ledger sequence. `apply` is idempotent per
sequence: applying an operation again returns the first result and changes
nothing, so recovery can re-apply whatever it is unsure of.

Backends: `rating.prepaid.store.memory` (in-process, the embedded default)
and `rating.prepaid.store.redis` (Redis, atomic Lua scripts, one call per
shard per operation in one pipeline). Both pass tests/test_prepaid_contract.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping

from rating.prepaid import errors
from rating.prepaid.records import Applied, Entries, WalletState
from rating.prepaid.wallets import BALANCE_LIMIT_MINOR, WalletPolicy

Overrides = Mapping[tuple[str, str], WalletPolicy]  # (account, wallet) -> the account's own policy


class StoreUnavailable(errors.Unavailable):
    """The store cannot be reached; nothing was changed by the failed call
    (or, for `apply`, it may be retried: it is idempotent). An UNAVAILABLE
    answer wherever it is not caught first."""


class StoreMismatch(StoreUnavailable):
    """The store's marker does not name the ledger it is bound to: missing
    (emptied, or never built: rebuild it) or another ledger's epoch
    (`foreign`: refused until `rating rebuild`). Nothing was changed."""

    def __init__(self, message: str, *, foreign: bool):
        super().__init__(message)
        self.foreign = foreign


def past_the_limit(account_id: str, wallet: str, balance_minor: int) -> StoreUnavailable:
    """`apply` refuses, changing nothing, to take a wallet past +-BALANCE_LIMIT_MINOR.
    The ledger refused such an operation before committing it, so the store
    either applies concurrent operations in another order than the ledger
    committed them (a retry after the other one succeeds) or no longer
    mirrors the ledger (`rating rebuild`)."""
    return StoreUnavailable(f"wallet {wallet!r} of account {account_id!r} would hold {balance_minor} minor "
                            f"units, past the balance limit of +-{BALANCE_LIMIT_MINOR}: nothing applied")


class BalanceStore(ABC):
    """Every store carries a marker of the ledger it mirrors: the ledger's
    epoch and, per shard, the last sequence applied there. `replace_all`
    writes it; `apply`, `sweep` and the reads check it in the same step and
    raise StoreMismatch when it does not name the bound epoch."""

    name = "store"
    marker_ttl_s: float | None = None  # how long `apply` remembers an operation (None: until forgotten)
    epoch: str | None = None  # the ledger this store mirrors (bind); None: unchecked

    def bind(self, epoch: str) -> None:
        self.epoch = epoch

    @abstractmethod
    async def marker_state(self, ledger_seq: int) -> str:
        """How the marker compares with the bound ledger, whose last sequence
        is `ledger_seq`: "ok", "missing" (on any shard), "ahead" (a shard
        applied a sequence the ledger does not have: it was restored from an
        older copy) or "foreign" (another ledger's epoch)."""

    @abstractmethod
    async def apply(self, seq: int, entries: Entries, policies: dict[str, WalletPolicy],
                    friendly: dict[str, bool], overrides: Overrides | None = None) -> Applied:
        """Add each entry's amount to its wallet, run the wallet state machine
        (`friendly[wallet]`: a cut-off now must wait) and return the balances,
        states and events. Each entry follows `overrides[(account, wallet)]`
        where given (an account's own policy), else `policies[wallet]`.
        Applying `seq` again returns the first result. A balance that would
        pass +-BALANCE_LIMIT_MINOR raises `past_the_limit`, checked in the
        same atomic step before anything is written."""

    @abstractmethod
    async def sweep(self, seq: int, policies: dict[str, WalletPolicy],
                    friendly: dict[str, bool], overrides: Overrides | None = None
                    ) -> tuple[list[WalletState], Applied]:
        """Cut off every deferred wallet whose wallet kind is not in friendly
        hours now (`friendly[wallet]` false) and is still exhausted by its
        policy (as in apply). Returns the wallets changed and the result;
        idempotent per `seq` like apply."""

    @abstractmethod
    async def deferred_count(self) -> int:
        """How many wallets wait for a deferred cut-off."""

    @abstractmethod
    async def wallets(self, account_id: str) -> list[WalletState]:
        """Every wallet of one account (none: an empty list)."""

    @abstractmethod
    def scan(self, page_size: int = 1000) -> AsyncIterator[list[WalletState]]:
        """Every wallet, page by page, in no particular order."""

    @abstractmethod
    async def replace_all(self, states: list[WalletState], *, seq: int = 0) -> None:
        """Forget everything and hold exactly `states` (rebuild from the ledger
        at sequence `seq`), with a marker of the bound epoch on every shard."""

    @abstractmethod
    async def forget(self, seqs: list[int]) -> None:
        """Drop the stored results of operations the ledger has settled."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional for backends
        """Release connections."""
