"""Movements: a top-up, refund or adjustment of one wallet, idempotent by key
(a refund may not take the balance below 0, checked inside the ledger's commit);
the usage path's debits and credits (rating.usage: a priced use, which may not
take the balance below 0 either, a parking session, a payment at the gate) too.
"""

from __future__ import annotations

import asyncio

from rating.prepaid import errors
from rating.prepaid.applying import Applier
from rating.prepaid.core import Core, balance_limit, check_deadline
from rating.prepaid.idempotency import check_key, check_replay, sha256
from rating.prepaid.ledger.base import (
    BalanceOutOfRange,
    LedgerUnavailable,
    LimitExceeded,
    NewOp,
    OpRow,
    Settlement,
)
from rating.prepaid.records import (
    FLOORED_KINDS,
    MOVEMENT_KINDS,
    PAYMENT_METHODS,
    Entries,
    Movement,
    MovementResult,
)
from rating.prepaid.wallets import AMOUNT_LIMIT_MINOR, Status


class Movements:
    def __init__(self, core: Core, applier: Applier):
        self.core, self.applier = core, applier

    async def move(self, movement: Movement, *, deadline: float | None = None) -> MovementResult:
        """Top up, refund or adjust one wallet (idempotent by key)."""
        self.check(movement)
        key = f"move:{movement.key}"
        payload_sha256 = sha256(movement.canonical())
        core = self.core
        async with core.admitted(), core.keys.hold(key):
            row = await core.find(key)
            if row is None:
                await core.store_ready()
                check_deadline(deadline)
                work = core.spawn(self.commit(key, movement, payload_sha256, deadline))
                row, result = await asyncio.shield(work)
                if result is not None:
                    return result
            check_replay(row, movement.kind, payload_sha256, movement.key)
            return MovementResult.from_bytes(await self.applier.settled_result(row))

    async def commit(self, key: str, movement: Movement, payload_sha256: bytes, deadline: float | None, *,
                     request: bytes = b"") -> tuple[OpRow, MovementResult | None]:
        """Commit and apply a checked movement; (its row, its result), or (the row
        first committed under `key`, None). `request`: what the ledger keeps of it
        for audit (default: the movement itself)."""
        entries = Entries.one(movement.account_id, movement.wallet, movement.change_minor)
        floor = (movement.account_id, movement.wallet, 0) if movement.kind in FLOORED_KINDS else None
        op = NewOp(key, movement.kind, payload_sha256, entries, request=request or movement.canonical(),
                   floor=floor, created_us=self.core.now_us())
        try:
            row, created = await self.core.ledger.commit(op)
        except LedgerUnavailable as exc:
            raise errors.Unavailable(f"ledger: {exc}") from exc
        except BalanceOutOfRange as exc:
            raise balance_limit(exc, idempotency_key=movement.key) from None
        except LimitExceeded as exc:
            raise errors.InsufficientBalance(
                f"{movement.kind} of {movement.requested_minor} exceeds the balance {exc.balance_minor} of "
                f"wallet {movement.wallet!r} of account {movement.account_id!r}",
                balance_minor=exc.balance_minor, amount_minor=movement.requested_minor) from None
        if not created:
            return row, None
        applied = await self.applier.apply_committed(row, entries, deadline=deadline)
        result = MovementResult(movement.key, row.seq, movement.account_id, movement.wallet,
                                movement.change_minor, int(applied.balances_minor[0]),
                                Status(int(applied.statuses[0])), applied.events)
        self.applier.settle_later(Settlement(row.seq, result.to_bytes(), applied.events))
        return row, result

    def check(self, m: Movement) -> None:
        check_key(m.key, "idempotency_key")
        if m.kind not in MOVEMENT_KINDS:
            raise errors.InvalidArgument(f"unknown movement {m.kind!r}")
        self.core.check_account(m.account_id)
        self.core.check_wallet(m.wallet)
        if m.method and m.method not in PAYMENT_METHODS:
            raise errors.InvalidArgument(
                f"unknown payment method {m.method!r}; use {', '.join(PAYMENT_METHODS)}", field="method")
        _check_amount(m)


def _check_amount(m: Movement) -> None:
    """The amount as asked (the request's field amount_minor)."""
    if m.kind == "adjust":
        if m.requested_minor == 0:
            raise errors.InvalidArgument("an adjustment must not be 0", field="amount_minor")
        if not m.reason:
            raise errors.InvalidArgument("an adjustment needs a reason", field="reason")
    elif m.requested_minor <= 0:
        raise errors.InvalidArgument(f"a {m.kind} amount must be positive", field="amount_minor")
    if abs(m.requested_minor) > AMOUNT_LIMIT_MINOR:
        raise errors.InvalidArgument("amount_minor is above 2^53 - 1", field="amount_minor")
