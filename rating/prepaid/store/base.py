"""The balance store interface: hot balances and wallet states.

A store holds, per (account, wallet), the balance in minor units and the
wallet's state (rating.prepaid.wallets.Status). It is a cache of the ledger:
every change it makes is an operation the ledger has already committed,
named by the operation's ledger sequence. `apply` is idempotent per
sequence: applying an operation again returns the first result and changes
nothing, so recovery can re-apply whatever it is unsure of.

Backends: `rating.prepaid.store.memory` (in-process, the embedded default)
and `rating.prepaid.store.redis` (Redis, atomic Lua scripts, one call per
shard per operation in one round trip). Both pass tests/test_prepaid_contract.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping

from rating.prepaid.records import Applied, Entries, WalletState
from rating.prepaid.wallets import WalletPolicy

Overrides = Mapping[tuple[str, str], WalletPolicy]  # (account, wallet) -> the account's own policy


class StoreUnavailable(Exception):
    """The store cannot be reached; nothing was changed by the failed call
    (or, for `apply`, it may be retried: it is idempotent)."""


class BalanceStore(ABC):
    name = "store"
    marker_ttl_s: float | None = None  # how long `apply` remembers an operation (None: until forgotten)

    @abstractmethod
    async def apply(self, seq: int, entries: Entries, policies: dict[str, WalletPolicy],
                    friendly: dict[str, bool], overrides: Overrides | None = None) -> Applied:
        """Add each entry's amount to its wallet, run the wallet state machine
        (`friendly[wallet]`: a cut-off now must wait) and return the balances,
        states and events. Each entry follows `overrides[(account, wallet)]`
        where given (an account's own policy), else `policies[wallet]`.
        Applying `seq` again returns the first result."""

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
    async def replace_all(self, states: list[WalletState]) -> None:
        """Forget everything and hold exactly `states` (rebuild from the ledger)."""

    @abstractmethod
    async def forget(self, seqs: list[int]) -> None:
        """Drop the stored results of operations the ledger has settled."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional for backends
        """Release connections."""
