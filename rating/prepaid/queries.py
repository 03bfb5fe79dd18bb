"""Queries: balances (one account, or pages of accounts through a filter),
the event feed, and the anomaly pages of a committed batch. Nothing here
changes state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pyarrow as pa

from rating.prepaid import errors
from rating.prepaid.applying import Applier
from rating.prepaid.core import Core
from rating.prepaid.idempotency import check_key
from rating.prepaid.ledger.base import LedgerUnavailable
from rating.prepaid.records import Event, WalletState, page_token, read_table_bytes, unpack_parts
from rating.prepaid.store.base import StoreUnavailable
from rating.prepaid.wallets import Status, WalletPolicy, status_after_rebuild

Wallets = list[tuple[WalletState, WalletPolicy]]


@dataclass(frozen=True)
class BalanceFilter:
    wallet: str = ""
    below_threshold: bool = False
    statuses: tuple[Status, ...] = ()


class Queries:
    def __init__(self, core: Core, applier: Applier):
        self.core, self.applier = core, applier

    async def balance(self, account_id: str) -> Wallets:
        core = self.core
        core.check_account(account_id)
        try:
            held = {s.wallet: s for s in await core.store.wallets(account_id)}
        except StoreUnavailable as exc:
            core.store_trouble(exc)
            raise errors.Unavailable(f"balance store: {exc}") from exc
        for meter_wallet in core.meter_wallets.get(account_id, ()):
            if meter_wallet not in held:
                held[meter_wallet] = self._unfunded(account_id, meter_wallet)
        return [(held[w], core.policy.of(w, account_id)) for w in sorted(held)]

    def _unfunded(self, account_id: str, wallet: str) -> WalletState:
        """A meter's wallet that no operation has touched: at 0, in the state
        the rule gives 0 (low when 0 is below its low-balance threshold)."""
        policy = self.core.policy.of(wallet, account_id)
        return WalletState(account_id, wallet, 0, status_after_rebuild(policy, None, 0))

    async def list_balances(self, where: BalanceFilter, page_size: int, page_token: str = ""
                            ) -> tuple[list[tuple[str, Wallets]], str]:
        """Accounts (in id order) with their wallets that pass `where`; a page
        starts after the account `page_token` names."""
        page_size = min(page_size or 1000, self.core.limits.page_accounts_max)
        by_account = await self._passing(where, page_token)
        accounts = sorted(by_account)
        shown = accounts[:page_size]
        token = shown[-1] if len(accounts) > page_size else ""
        return [(a, sorted(by_account[a], key=lambda sp: sp[0].wallet)) for a in shown], token

    async def _passing(self, where: BalanceFilter, page_token: str) -> dict[str, Wallets]:
        """The wallets after `page_token` that pass `where`, by account."""
        core = self.core
        by_account: dict[str, Wallets] = {}
        held: set[tuple[str, str]] = set()
        try:
            async for page in core.store.scan():
                for s in page:
                    held.add((s.account_id, s.wallet))
                    self._list_if(where, page_token, s, by_account)
        except StoreUnavailable as exc:
            core.store_trouble(exc)
            raise errors.Unavailable(f"balance store: {exc}") from exc
        for account_id, wallets in core.meter_wallets.items():  # the wallets never funded, at 0
            for wallet in wallets:
                if (account_id, wallet) not in held:
                    self._list_if(where, page_token, self._unfunded(account_id, wallet), by_account)
        return by_account

    def _list_if(self, where: BalanceFilter, page_token: str, s: WalletState, by_account: dict) -> None:
        """Add `s` to `by_account` if it passes `where` and comes after `page_token`."""
        if page_token and s.account_id <= page_token:
            return
        if where.wallet and s.wallet != where.wallet:
            return
        policy = self.core.policy.of(s.wallet, s.account_id)
        if where.below_threshold and not s.balance_minor < policy.low_balance_minor:
            return
        if where.statuses and s.status not in where.statuses:
            return
        by_account.setdefault(s.account_id, []).append((s, policy))

    async def events(self, after: int = 0, *, types: tuple[int, ...] = (), account_id: str = "",
                     stop_at_end: bool = False, poll_s: float = 1.0) -> AsyncIterator[Event]:
        """Events after the cursor `after`, then new ones as they are recorded."""
        cursor = after
        changed = self.applier.events_changed
        while True:
            rows = await self.core.ledger.events_after(cursor, types=types, account_id=account_id)
            for event in rows:
                cursor = event.cursor
                yield event
            if rows:
                continue
            if stop_at_end:
                return
            async with changed:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), poll_s)

    async def anomalies(self, batch_id: str, token: str = "") -> tuple[pa.Table, str, int]:
        """One page of a committed batch's anomaly rows: (rows, the next page's
        token or "", all of the batch's anomalies). Pages are cut at commit."""
        check_key(batch_id, "batch_id")
        row = await self.core.find(f"batch:{batch_id}")
        if row is None:
            raise errors.NotFound(f"no batch {batch_id!r} in the ledger", batch_id=batch_id)
        head, first_page = unpack_parts(row.request)
        meta = json.loads(head)
        pages = meta["anomaly_pages"]
        if token and not (token.isdigit() and token.isascii() and int(token) < pages):
            raise errors.InvalidArgument(f"page_token {token[:40]!r} is not a page of batch {batch_id!r} "
                                         f"(it has {pages})", field="page_token", batch_id=batch_id)
        page = int(token or 0)
        if page == 0:
            rows = first_page
        else:
            try:
                rows = await self.core.ledger.anomaly_page(row.seq, page)
            except LedgerUnavailable as exc:
                raise errors.Unavailable(f"ledger: {exc}") from exc
        return read_table_bytes(rows), page_token(page + 1, pages), meta["anomalies"]
