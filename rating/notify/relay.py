"""The relay: claim due outbox rows, check them once more, send, record.

One pass (`run_once`): put back rows whose lease ran out, then claim due
rows a batch at a time; each batch goes through the gate (paid since,
opted out since, quiet hours, the daily cap: `rating.notify.gate`), then
its rows are sent concurrently through their channels and every answer is
recorded in one transaction. A send that raises or outlives `send_timeout_s`
is a retry. A row handed to a channel cannot be recalled: a payment that
lands while it is being sent does not stop it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rating.notify.channel import Channel, Message
from rating.notify.outbox import Answer, Claimed, Outbox, Outcome


@dataclass(frozen=True)
class RelayPolicy:
    batch_rows_max: int = 500
    batches_max: int = 1000  # per pass: a pass ends even while rows keep coming
    lease_s: float = 300.0  # a row in sending longer than this is reaped
    backoff_s: tuple[float, ...] = (60.0, 300.0, 1800.0, 7200.0, 21600.0)  # after attempt 1, 2, ...
    concurrency: int = 64
    send_timeout_s: float = 30.0


@dataclass(frozen=True)
class Checked:
    send: list[Claimed]
    defer: list[tuple[Claimed, int, str]] = field(default_factory=list)  # (row, until_us, why)
    cancel: list[tuple[Claimed, str]] = field(default_factory=list)  # (row, why)


class Gate(Protocol):
    async def check(self, rows: Sequence[Claimed], now_us: int) -> Checked: ...


@dataclass
class RelayReport:
    outcomes: Counter = field(default_factory=Counter)  # sent, retry, bad_address, refused, deferred, ...

    def __str__(self) -> str:
        return ", ".join(f"{name} {n}" for name, n in sorted(self.outcomes.items()) if n) or "nothing due"


Render = Callable[[Claimed], Message]


class Relay:
    def __init__(self, outbox: Outbox, channels: Mapping[str, Channel], *, render: Render,
                 gate: Gate | None = None, policy: RelayPolicy = RelayPolicy(),
                 clock: Callable[[], float] = time.time, site_id: str = ""):
        self.outbox, self.channels, self.render, self.gate = outbox, dict(channels), render, gate
        self.site_id = site_id  # "" claims every site's rows
        self.policy, self.clock = policy, clock
        self._slots = asyncio.Semaphore(policy.concurrency)

    def _now_us(self) -> int:
        return int(self.clock() * 1_000_000)

    async def run_once(self) -> RelayReport:
        report = RelayReport()
        report.outcomes["reaped"] += await self.outbox.reap(self._now_us())
        for _ in range(self.policy.batches_max):
            claimed = await self.outbox.claim(self._now_us(), limit=self.policy.batch_rows_max,
                                              lease_s=self.policy.lease_s, site_id=self.site_id)
            if not claimed:
                break
            await self._batch(claimed, report)
        return report

    async def run_forever(self, stop: asyncio.Event, *, interval_s: float = 5.0) -> None:
        """Pass after pass until `stop` is set (the server's loop)."""
        while not stop.is_set():
            await self.run_once()
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                pass

    async def _batch(self, claimed: list[Claimed], report: RelayReport) -> None:
        now_us = self._now_us()
        checked = Checked(claimed) if self.gate is None else await self.gate.check(claimed, now_us)
        if checked.defer:
            await self.outbox.defer(checked.defer, now_us)
            report.outcomes["deferred"] += len(checked.defer)
        if checked.cancel:
            await self.outbox.cancel(checked.cancel, now_us)
            report.outcomes["cancelled"] += len(checked.cancel)
        answers = await asyncio.gather(*(self._send(row) for row in checked.send))
        pairs = list(zip(checked.send, answers, strict=True))
        await self.outbox.finish(pairs, self._now_us(), backoff_s=self.policy.backoff_s)
        report.outcomes.update(a.outcome.value for a in answers)

    async def _send(self, row: Claimed) -> Answer:
        channel = self.channels.get(row.channel)
        if channel is None:
            return Answer(Outcome.RETRY, "", f"no channel {row.channel!r} in this relay")
        try:
            message = self.render(row)
        except Exception as exc:  # noqa: BLE001 - a template that broke since it was checked: on record
            return Answer(Outcome.REFUSED, "", f"cannot render {row.template!r}: {exc}")
        async with self._slots:
            try:
                return await asyncio.wait_for(channel.send(message), self.policy.send_timeout_s)
            except TimeoutError:
                return Answer(Outcome.RETRY, "", f"no answer in {self.policy.send_timeout_s} s")
            except Exception as exc:  # noqa: BLE001 - a channel's own fault: retried, recorded
                return Answer(Outcome.RETRY, "", f"{type(exc).__name__}: {exc}")
