"""The deduction planner in a child process.

Rating a batch is mostly Python and numpy glue that holds the GIL; on a
thread of the server it takes turns with the event loop that moves gRPC
messages, commits and store calls. In its own process it runs beside them.
`ProcessPlanner` has the interface the service uses of `DeductionPlanner`
(plan, finished, rollback, checkpoint, restore_stored, wallet_names); calls
are blocking request/answer pairs over a pipe, made from the service's rating
thread. Data crosses the pipe once, as bytes: the readings as the client sent
them (SentBatch), the anomaly pages and the state image as the child encoded
them (records.AnomalyPages, StateImage.to_bytes), the images the ledger keeps.

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

from rating.prepaid.records import AnomalyPages, Entries, SentBatch, read_table_bytes


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
    anomaly_pages: AnomalyPages
    readings: int
    state: StateBytes


class ProcessPlanner:
    def __init__(self, docs_bytes: bytes, postpaid_groups: frozenset[str] = frozenset(), *,
                 anomaly_rows_max: int = 10_000):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, docs_bytes, postpaid_groups,
                                                             anomaly_rows_max),
                                        daemon=True, name="rating-planner")
        self._process.start()
        child.close()
        self._lock = threading.Lock()
        self._next_id = 0
        # Plans committed or voided, told to the child with the next plan: at most the plans
        # in flight (bounded by the service's ops_pending_max).
        self._finished: list[int] = []
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

    def plan(self, readings: pa.Table | SentBatch, *, where: str = "readings",
             now: dt.datetime | None = None) -> RemotePlan:
        self._next_id += 1
        finished, self._finished = self._finished, []
        accounts, wallets, changes, pages, count, state = self._call(
            "plan", self._next_id, SentBatch.of(readings).ipc_bytes(), where, now, finished)
        return RemotePlan(self._next_id, Entries(accounts, wallets, changes), pages, count, StateBytes(state))

    def finished(self, plan: RemotePlan) -> None:
        """The plan is committed or voided: the child may drop its saved state (on the next call)."""
        self._finished.append(plan.plan_id)

    def rollback(self, plan: RemotePlan) -> None:
        self._call("rollback", plan.plan_id)

    def checkpoint(self) -> StateBytes:
        return StateBytes(self._call("checkpoint"))

    def restore_stored(self, images: list[bytes]) -> None:
        self._call("restore", images)

    def close(self) -> None:
        try:
            self._call("close")
        except PlannerGone:
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _serve(conn, docs_bytes: bytes, postpaid_groups: frozenset[str], anomaly_rows_max: int) -> None:
    """The child: one DeductionPlanner, driven by requests until `close` or EOF."""
    child = _Child(docs_bytes, postpaid_groups, anomaly_rows_max)
    while True:
        try:
            kind, *args = conn.recv()
        except (EOFError, OSError):
            return  # the server is gone
        if kind == "close":
            conn.send(("ok", None))
            return
        try:
            handler = getattr(child, f"on_{kind}", None)
            if handler is None:
                raise ValueError(f"unknown request {kind!r}")
            conn.send(("ok", handler(*args)))
        except Exception as exc:  # sent back to be raised in the server
            try:
                conn.send(("error", exc))
            except Exception:
                conn.send(("error", RuntimeError(traceback.format_exc())))


class _Child:
    """The requests the child answers, one method each."""

    def __init__(self, docs_bytes: bytes, postpaid_groups: frozenset[str], anomaly_rows_max: int):
        from rating.prepaid.planning import DeductionPlanner
        from rating.prepaid.sitedocs import SiteDocs

        # the server's checks, so the child builds what the service did (its planner never splits)
        config, policy = SiteDocs.from_bytes(docs_bytes).build(postpaid_groups=postpaid_groups)
        self.planner = DeductionPlanner(config, policy, anomaly_rows_max=anomaly_rows_max)
        self.saved: dict[int, Any] = {}  # plan id -> the Plan, until finished or rolled back

    def on_hello(self) -> list[str]:
        return self.planner.wallet_names

    def on_plan(self, plan_id: int, readings: bytes, where: str, now, finished: list[int]) -> tuple:
        for done in finished:
            if done in self.saved:
                self.planner.finished(self.saved.pop(done))
        plan = self.planner.plan(read_table_bytes(readings), where=where, now=now)
        self.saved[plan_id] = plan
        e = plan.entries
        state = plan.state.to_bytes()
        return e.account_ids, e.wallets, e.changes_minor, plan.anomaly_pages, plan.readings, state

    def on_rollback(self, plan_id: int) -> None:
        self.planner.rollback(self.saved[plan_id])
        for later in [i for i in self.saved if i >= plan_id]:  # taken back with it
            del self.saved[later]

    def on_checkpoint(self) -> bytes:
        return self.planner.checkpoint().to_bytes()

    def on_restore(self, images: list[bytes]) -> None:
        self.planner.restore_stored(images)
        self.saved.clear()
