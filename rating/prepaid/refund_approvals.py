"""Prepaid refunds that wait for an approver (`[prepaid] refund_approval = true`).

A refund is then up to three operations of the prepaid ledger, each keyed by
the refund's own key (the request's idempotency key):

- `refund-request:<key>`: the request, no entries: what is asked, who asked;
- `move:<key>`: the approval, which is the refund movement itself, committed
  with its floor (a wallet never goes below 0, checked inside the commit) and
  naming the approver in its request row;
- `refund-reject:<key>`: a rejection, no entries, with its reason.

Only one of the last two is ever written: both take the refund's key lock and
look first (one server holds the ledger). The approver is never the one who
asked. Without `refund_approval` a refund moves money at once (Movements).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from rating.errors import InputError
from rating.prepaid import errors
from rating.prepaid.core import Core
from rating.prepaid.idempotency import check_key, check_replay, sha256
from rating.prepaid.ledger.base import LedgerUnavailable, NewOp, OpRow, Settlement
from rating.prepaid.movements import Movements
from rating.prepaid.queries import Wallets
from rating.prepaid.records import Entries, Movement, MovementResult

REQUEST, REJECT = "refund-request:", "refund-reject:"
DECISION_KINDS = ("refund_request", "refund_reject")  # operations without entries


@dataclass(frozen=True)
class RefundState:
    """A prepaid refund request as its operations leave it."""

    key: str
    sequence: int  # the request's operation
    status: str  # requested | approved | rejected
    account_id: str
    wallet: str
    requested_minor: int
    requested_by: str
    decided_by: str = ""
    reason: str = ""  # a rejection's
    movement: MovementResult | None = None  # approved: the refund as it moved the wallet
    replayed: bool = False


class RefundApprovals:
    def __init__(self, core: Core, movements: Movements, balance: Callable[[str], Awaitable[Wallets]]):
        """`balance`: an account's wallets now (Queries.balance)."""
        self.core, self.movements, self.balance = core, movements, balance

    async def request(self, movement: Movement, requested_by: str) -> RefundState:
        """Record a refund request (idempotent by its key); no money moves."""
        self.movements.check(movement)
        if movement.kind != "refund":
            raise errors.InvalidArgument(f"a refund request is a refund, not a {movement.kind}")
        _named(requested_by, "actor")
        payload = sha256(movement.canonical())
        async with self.core.admitted(), self.core.keys.hold(f"refund:{movement.key}"):
            row = await self.core.find(REQUEST + movement.key)
            if row is not None:
                check_replay(row, "refund_request", payload, movement.key)
                return replace(await self._state(row), replayed=True)
            await self._check_balance(movement)
            asked = {"movement": json.loads(movement.canonical()), "requested_by": requested_by}
            row = await self._record(REQUEST + movement.key, "refund_request", payload, asked)
            return await self._state(row)

    async def decide(self, key: str, *, approve: bool, decided_by: str, reason: str = "",
                     deadline: float | None = None) -> RefundState:
        """Approve (the money moves) or reject a request; a second decision alike
        returns the first, an opposite one is REFUND_DECIDED."""
        check_key(key, "idempotency_key")
        _named(decided_by, "actor")
        if not approve and not reason.strip():
            raise errors.InvalidArgument("a rejection needs its reason", field="reason")
        async with self.core.admitted(), self.core.keys.hold(f"refund:{key}"):
            asked = await self.core.find(REQUEST + key)
            if asked is None:
                raise errors.NotFound(f"no prepaid refund request under key {key!r}; nothing was written",
                                      reason="NOT_FOUND", idempotency_key=key)
            state = await self._state(asked)
            if state.status != "requested":
                if state.status == ("approved" if approve else "rejected"):
                    return replace(state, replayed=True)
                raise InputError(f"refund {key!r} was {state.status} by {state.decided_by!r}; nothing was "
                                 "written", where=key, reason="REFUND_DECIDED")
            if decided_by == state.requested_by:
                raise InputError(f"{decided_by!r} asked for refund {key!r}: another approver decides it",
                                 where=key, reason="PERMISSION_DENIED")
            if approve:
                await self._approve(state, decided_by, deadline)
            else:
                await self._record(REJECT + key, "refund_reject", sha256(reason.encode()),
                                   {"decided_by": decided_by, "reason": reason})
            return await self._state(asked)

    async def state(self, key: str) -> RefundState | None:
        asked = await self.core.find(REQUEST + key)
        return None if asked is None else await self._state(asked)

    async def _approve(self, state: RefundState, decided_by: str, deadline: float | None) -> None:
        movement = _movement(await self.core.find(REQUEST + state.key))
        audit = json.dumps([*json.loads(movement.canonical()),
                            {"requested_by": state.requested_by, "approved_by": decided_by}]).encode()
        work = self.core.spawn(self.movements.commit(f"move:{state.key}", movement,
                                                     sha256(movement.canonical()), deadline, request=audit))
        await asyncio.shield(work)

    async def _state(self, asked: OpRow) -> RefundState:
        key = asked.key.removeprefix(REQUEST)
        movement, told = _movement(asked), json.loads(asked.request)
        state = RefundState(key, asked.seq, "requested", movement.account_id, movement.wallet,
                            movement.requested_minor, told["requested_by"])
        moved = await self.core.find(f"move:{key}")
        if moved is not None:
            settled = await self.movements.applier.settled_result(moved)
            result = MovementResult.from_bytes(settled, replayed=False)
            return replace(state, status="approved", decided_by=json.loads(moved.request)[-1]["approved_by"],
                           movement=result)
        rejected = await self.core.find(REJECT + key)
        if rejected is not None:
            why = json.loads(rejected.request)
            return replace(state, status="rejected", decided_by=why["decided_by"], reason=why["reason"])
        return state

    async def _check_balance(self, movement: Movement) -> None:
        """Refuse a request above the wallet's balance now (its approval checks again, in its commit)."""
        balances = {s.wallet: s.balance_minor for s, _ in await self.balance(movement.account_id)}
        balance = balances.get(movement.wallet, 0)
        if movement.requested_minor > balance:
            raise errors.InsufficientBalance(
                f"refund of {movement.requested_minor} exceeds the balance {balance} of wallet "
                f"{movement.wallet!r} of account {movement.account_id!r}",
                balance_minor=balance, amount_minor=movement.requested_minor)

    async def _record(self, key: str, kind: str, payload: bytes, told: dict) -> OpRow:
        """Commit and settle an operation without entries (nothing for the store to apply)."""
        request = json.dumps(told).encode()
        op = NewOp(key, kind, payload, Entries.empty(), request=request, created_us=self.core.now_us())
        try:
            row, _ = await self.core.ledger.commit(op)
            await self.core.ledger.settle([decision_settlement(row)])
        except LedgerUnavailable as exc:
            raise errors.Unavailable(f"ledger: {exc}") from exc
        return row


def decision_settlement(row: OpRow) -> Settlement:
    """The settlement of a request or rejection: its request row is its result (recovery settles
    one a crash left unsettled with this too)."""
    return Settlement(row.seq, row.request, [])


def _movement(asked: OpRow | None) -> Movement:
    assert asked is not None, "a refund request was read back before it was committed"
    kind, account, wallet, amount, method, reason, reference = json.loads(asked.request)["movement"]
    return Movement(kind, asked.key.removeprefix(REQUEST), account, wallet, amount, method, reason, reference)


def _named(name: str, field: str) -> None:
    if not name:
        raise errors.InvalidArgument(f"{field} is empty: a refund with approval names who acts", field=field)
