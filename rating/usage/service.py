"""The usage service: parking sessions, facility uses, pass renewals and
instalments as movements of the prepaid service's wallets (one ledger, one
idempotency rule). It holds a `PrepaidService` and the usage file's settings.

- A resident's session debits the account's parking wallet (`session`: the car
  has left, so it may take the wallet below 0; the low-balance rules warn);
  one covered by a bought pass period costs nothing and moves nothing.
- A visitor's session is paid at the gate: a `gate_payment` credit of the
  site's visitor account, the gate's takings.
- Keys: `parking:<plate>:<exit µs>`, `gate:<plate>:<exit µs>`, `use:<key>`,
  `pass:<account>:<pass>:<first day>`, `instalment:<plan>:<account>:<n>`:
  a batch sent again moves nothing twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from rating.prepaid import errors
from rating.prepaid.records import PAYMENT_METHODS, Movement, MovementResult
from rating.prepaid.service import PrepaidService
from rating.usage.facilities import Use, use_movement
from rating.usage.parking import ParkingRater, ParkingResult
from rating.usage.parking_reference import MINUTE_US
from rating.usage.parking_state import load_carried, save_carried
from rating.usage.passes import RenewalStep, Subscription, plan_renewal
from rating.usage.plates import visitor_plates
from rating.usage.settings import UsageSettings
from rating.usage.zone_offsets import offsets_us

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
SESSIONS_IN_FLIGHT = 64  # a batch's movements under way at once; far below the service's ops_pending_max


@dataclass(frozen=True)
class ParkingSettled:
    rated: ParkingResult
    movements: list[MovementResult]  # in session order, sessions that moved money
    covered: int  # resident sessions a pass paid for


@dataclass(frozen=True)
class Renewal:
    account_id: str
    product: str
    first_day: dt.date
    outcome: str  # "bought", "already_bought", "refused" (the wallet cannot pay), "warned", "ok"
    balance_minor: int
    price_minor: int


@dataclass
class UsageService:
    prepaid: PrepaidService
    settings: UsageSettings
    subscriptions: list[Subscription] = field(default_factory=list)
    state_path: Path | None = None  # the stays carried between batches (parking_state); None: in memory
    rater: ParkingRater | None = None
    _parking_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        accounts = self.prepaid.config.registry.accounts
        plates = self.settings.plates
        needed = set() if plates is None else {a for a in plates.account_ids.to_pylist() if a is not None}
        needed |= {s.account_id for s in self.subscriptions}
        if self.settings.visitor_account is not None:
            needed.add(self.settings.visitor_account)
        unknown = sorted(needed - set(accounts))
        if unknown:
            raise errors.InvalidArgument(f"{self.settings.path}: accounts not in the site's registry: "
                                         f"{', '.join(unknown[:5])}", field="account_id")
        if plates is not None and visitor_plates(plates) and self.settings.visitor_account is None:
            raise errors.InvalidArgument(f"{self.settings.path}: visitors pay at the gate, and "
                                         "[parking].visitor_account names no account to record it",
                                         field="visitor_account")
        if plates is not None and self.rater is None:
            carried = None if self.state_path is None else load_carried(self.state_path, plates)
            self.rater = ParkingRater(self.settings, carried)

    # ---- facilities ---------------------------------------------------------------------------

    async def use(self, use: Use, *, deadline: float | None = None) -> MovementResult:
        """Debit one priced use (refused with INSUFFICIENT_BALANCE when the wallet cannot pay it)."""
        movement, _ = use_movement(self.settings, use)
        return await self.prepaid.move(movement, deadline=deadline)

    # ---- parking ------------------------------------------------------------------------------

    async def park(self, events: pa.Table, *, method: str = "cash", where: str = "events") -> ParkingSettled:
        """Rate a batch of events (stays carried in order) and move each session's money."""
        if method not in PAYMENT_METHODS:
            raise errors.InvalidArgument(f"unknown payment method {method!r}", field="method")
        async with self._parking_lock:
            if self.rater is None:
                raise errors.InvalidArgument(f"{self.settings.path}: no plates ([parking].plates)",
                                             field="plates")
            carried = self.rater.carried
            try:
                rated = await asyncio.to_thread(self.rater.rate, events, where=where)  # the loop serves on
                held = await self._passes_held(rated)
                movements, covered = self._session_movements(rated.sessions, held, method)
                results = await self._moved(movements)
                if self.state_path is not None:
                    rater = self.rater
                    await asyncio.to_thread(save_carried, self.state_path, rater.carried, rater.plates)
            except BaseException:
                # the stays go back as they were: the batch sent again is rated again, and the
                # movements made before the failure replay by their keys
                self.rater.carried = carried
                raise
        return ParkingSettled(rated, results, covered)

    async def _moved(self, movements: list[Movement]) -> list[MovementResult]:
        """Each movement made, at most SESSIONS_IN_FLIGHT at once (the ledger commits them in
        groups), results in the sessions' order."""
        gate = asyncio.Semaphore(SESSIONS_IN_FLIGHT)

        async def one(movement: Movement) -> MovementResult:
            async with gate:
                return await self.prepaid.move(movement)
        done = await asyncio.gather(*(one(m) for m in movements), return_exceptions=True)
        failed = next((r for r in done if isinstance(r, BaseException)), None)
        if failed is not None:  # every movement has ended: a retry finds each made or not
            raise failed
        return [r for r in done if isinstance(r, MovementResult)]

    def _session_movements(self, sessions: pa.Table, held: set[tuple[str, dt.date]],
                           method: str) -> tuple[list[Movement], int]:
        """The movement of each session that costs something; how many a pass paid for."""
        movements, covered = [], 0
        for s, day in zip(sessions.to_pylist(), self._exit_days(sessions), strict=True):
            if s["kind"] == "resident" and (s["account_id"], day) in held:
                covered += 1
            elif s["amount_minor"] > 0:
                movements.append(self._session_movement(s, method))
        return movements, covered

    def _session_movement(self, s: dict, method: str) -> Movement:
        exit_us = (s["exit"] - _EPOCH) // dt.timedelta(microseconds=1)
        lost = " (lost ticket)" if s["lost_ticket"] else ""
        what = f"parking {s['plate']} until {s['exit'].isoformat()}{lost}"
        wallet, amount, tariff = self.settings.wallet, s["amount_minor"], s["tariff_id"]
        if s["kind"] == "resident":
            return Movement("session", f"parking:{s['plate']}:{exit_us}", s["account_id"], wallet, amount,
                            reason=what, reference=tariff)
        visitor = self.settings.visitor_account
        assert visitor is not None  # __post_init__: a site with visitor plates names it
        return Movement("gate_payment", f"gate:{s['plate']}:{exit_us}", visitor, wallet, amount,
                        method=method, reason=what, reference=tariff)

    def _exit_days(self, sessions: pa.Table) -> list[dt.date]:
        """The local date of each session's exit (a pass covers whole local days)."""
        exits = sessions.column("exit").cast(pa.int64()).to_numpy()
        local = exits + offsets_us(exits, self.settings.site.zone)
        return [dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in local // (1440 * MINUTE_US)]

    async def _passes_held(self, rated: ParkingResult) -> set[tuple[str, dt.date]]:
        """(account, exit day) pairs of resident sessions whose pass period is bought."""
        by_account: dict[str, list[Subscription]] = {}
        for sub in self.subscriptions:
            by_account.setdefault(sub.account_id, []).append(sub)
        held, asked = set(), {}
        sessions = rated.sessions
        for account, day in zip(sessions.column("account_id").to_pylist(), self._exit_days(sessions),
                                strict=True):
            for sub in by_account.get(account or "", ()):
                if day < sub.start:
                    continue
                key = sub.key(sub.period(day)[1])
                if key not in asked:
                    asked[key] = await self.prepaid.core.find(f"move:{key}") is not None
                if asked[key]:
                    held.add((account, day))
        return held

    # ---- passes -------------------------------------------------------------------------------

    async def renew_passes(self, today: dt.date) -> list[Renewal]:
        """Buy what is due (idempotent per period) and warn a wallet that cannot pay the next."""
        return [await self._renewal(step) for step in plan_renewal(self.subscriptions, today)]

    async def _renewal(self, step: RenewalStep) -> Renewal:
        sub, product = step.subscription, step.subscription.product
        price = int(product.price.scaleb(self.settings.site.minor_unit_exponent))
        balance = await self._balance(sub.account_id, product.wallet)
        if step.action == "warn_if_short":
            outcome = "warned" if balance < price else "ok"
            return Renewal(sub.account_id, product.name, step.first_day, outcome, balance, price)
        until = step.first_day + dt.timedelta(days=product.days - 1)
        movement = Movement("use", sub.key(step.first_day), sub.account_id, product.wallet, price,
                            reason=f"{product.name} pass {step.first_day.isoformat()} to {until.isoformat()}")
        try:
            result = await self.prepaid.move(movement)
        except errors.InsufficientBalance:
            return Renewal(sub.account_id, product.name, step.first_day, "refused", balance, price)
        outcome = "already_bought" if result.replayed else "bought"
        return Renewal(sub.account_id, product.name, step.first_day, outcome, result.balance_minor, price)

    async def _balance(self, account_id: str, wallet: str) -> int:
        for state, _policy in await self.prepaid.balance(account_id):
            if state.wallet == wallet:
                return state.balance_minor
        return 0

    # ---- instalments --------------------------------------------------------------------------

    async def pay_instalments(self, movements: list[Movement]
                              ) -> list[tuple[Movement, MovementResult | None]]:
        """Pay each due instalment from its wallet; None where the wallet could not pay (still due)."""
        paid: list[tuple[Movement, MovementResult | None]] = []
        for movement in movements:
            try:
                paid.append((movement, await self.prepaid.move(movement)))
            except errors.InsufficientBalance:
                paid.append((movement, None))
        return paid

    async def paid_keys(self, keys: list[str]) -> set[str]:
        """The instalment keys the ledger holds (for the fund report)."""
        return {key for key in keys if await self.prepaid.core.find(f"move:{key}") is not None}
