"""The deduction planner in a child process.

Rating a batch is mostly Python and numpy glue that holds the GIL; on a
thread of the server it takes turns with the event loop that moves gRPC
messages, commits and store calls. In its own process it runs beside them.
`ProcessPlanner` has the interface the service uses of `DeductionPlanner`
(plan, rollback, checkpoint, restore, wallet_names); calls are blocking
request/answer pairs over a pipe, made from the service's rating thread.

The child holds the Rater and the state before each plan that is still in
flight, so `rollback` works as in process. If the child dies, the next call
raises PlannerGone; the service then starts a new one and reloads the meter
state from the ledger, as after any doubt about the Rater.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
import traceback
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from rating.prepaid.meterstate import StateImage
from rating.prepaid.records import Entries, read_table_bytes, table_bytes


class PlannerGone(Exception):
    """The planner process died; its Rater is lost (the ledger has it)."""


@dataclass(frozen=True)
class StateBytes:
    """A state image already serialised by the child."""

    data: bytes

    def to_bytes(self) -> bytes:
        return self.data


@dataclass(frozen=True)
class RemotePlan:
    plan_id: int
    entries: Entries
    anomalies: pa.Table
    readings: int
    state: StateBytes


class ProcessPlanner:
    def __init__(self, docs_bytes: bytes):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, docs_bytes), daemon=True,
                                        name="rating-planner")
        self._process.start()
        child.close()
        self._lock = threading.Lock()
        self._next_id = 0
        self._finished: list[int] = []  # plans committed or voided: their saved state can go
        self.wallet_names = self._call("hello")

    def _call(self, *request):
        with self._lock:
            try:
                self._conn.send(request)
                status, value = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError) as exc:
                raise PlannerGone(f"the planner process is gone: {exc}") from None
        if status == "error":
            raise value
        return value

    def plan(self, readings: pa.Table, *, where: str = "readings",
             now: dt.datetime | None = None) -> RemotePlan:
        self._next_id += 1
        finished, self._finished = self._finished, []
        accounts, wallets, amounts, anomalies, count, state = self._call(
            "plan", self._next_id, table_bytes(readings), where, now, finished)
        entries = Entries(accounts, wallets, amounts)
        return RemotePlan(self._next_id, entries, read_table_bytes(anomalies), count, StateBytes(state))

    def finished(self, plan: RemotePlan) -> None:
        """The plan is committed or voided: the child may drop its saved state (on the next call)."""
        self._finished.append(plan.plan_id)

    def rollback(self, plan: RemotePlan) -> None:
        self._call("rollback", plan.plan_id)

    def checkpoint(self) -> StateImage:
        return StateImage.from_bytes(self._call("checkpoint"))

    def restore(self, images: list[StateImage]) -> None:
        self._call("restore", [image.to_bytes() for image in images])

    def close(self) -> None:
        try:
            self._call("close")
        except PlannerGone:
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _serve(conn, docs_bytes: bytes) -> None:
    """The child: one DeductionPlanner, driven by requests until `close` or EOF."""
    from rating.prepaid.planning import DeductionPlanner
    from rating.prepaid.sitedocs import SiteDocs

    config, policy = SiteDocs.from_bytes(docs_bytes).build()
    planner = DeductionPlanner(config, policy)
    saved: dict[int, Any] = {}  # plan id -> the Plan, until finished or rolled back
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the server is gone
        kind, *args = request
        answer: Any = None
        try:
            if kind == "hello":
                answer = planner.wallet_names
            elif kind == "plan":
                plan_id, readings, where, now, finished = args
                for done in finished:
                    if done in saved:
                        planner.finished(saved.pop(done))
                plan = planner.plan(read_table_bytes(readings), where=where, now=now)
                saved[plan_id] = plan
                e = plan.entries
                answer = (e.account_ids, e.wallets, e.amounts_minor, table_bytes(plan.anomalies),
                          plan.readings, plan.state.to_bytes())
            elif kind == "rollback":
                planner.rollback(saved[args[0]])
                for later in [i for i in saved if i >= args[0]]:  # taken back with it
                    del saved[later]
                answer = None
            elif kind == "checkpoint":
                answer = planner.checkpoint().to_bytes()
            elif kind == "restore":
                planner.restore([StateImage.from_bytes(b) for b in args[0]])
                saved.clear()
                answer = None
            elif kind == "close":
                conn.send(("ok", None))
                return
            else:
                raise ValueError(f"unknown request {kind!r}")
            conn.send(("ok", answer))
        except Exception as exc:  # sent back to be raised in the server
            try:
                conn.send(("error", exc))
            except Exception:
                conn.send(("error", RuntimeError(traceback.format_exc())))
