"""RatingService and PrepaidService handlers: decode, call rating.prepaid, encode.

No business rule lives here. Errors become statuses in one place
(rating.server.status); every call is logged once, with its outcome.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from rating.engine import rate
from rating.prepaid import errors
from rating.prepaid.records import DeductionResult, Event, Movement, MovementResult, SentBatch, WalletState
from rating.prepaid.service import BalanceFilter, PrepaidService
from rating.prepaid.wallets import Status, WalletPolicy
from rating.server import roles
from rating.server.arrow_io import read_ipc, table_bytes
from rating.server.status import abort, as_prepaid_error, code_of, rpc_status, set_status
from rating.v1 import rating_pb2 as pb
from rating.v1 import rating_pb2_grpc

log = logging.getLogger("rating.server")

METHODS = {pb.PAYMENT_METHOD_UNSPECIFIED: "", pb.PAYMENT_METHOD_ONLINE: "online",
           pb.PAYMENT_METHOD_CASH: "cash", pb.PAYMENT_METHOD_CHEQUE: "cheque",
           pb.PAYMENT_METHOD_BANK_TRANSFER: "bank_transfer"}
_END = object()


def _method_of(wire) -> str:
    method = METHODS.get(wire)
    if method is None:
        raise errors.InvalidArgument(f"unknown payment method {wire}", field="method")
    return method


def _acting(actor: str) -> str:
    """Who acts: the token's name (its role let it call), else the request's `actor`."""
    return roles.CALLER.get().name or actor


def _deadline(context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _log_call(method: str, started: float, code: str, exc_info: BaseException | None = None,
              **fields) -> None:
    """One line per call; an internal error (the client sees INTERNAL) with its traceback."""
    level = logging.INFO if code in ("OK", "CANCELLED") else logging.WARNING
    if exc_info is not None:
        level = logging.ERROR
    log.log(level, "%s %s", method, code, exc_info=exc_info,
            extra={"fields": {"method": method, "code": code,
                              "duration_ms": round((time.monotonic() - started) * 1000, 3), **fields}})


def _failed(method: str, started: float, exc: Exception, **fields) -> errors.PrepaidError:
    """The status an exception ends the call with, logged (internal errors with their traceback)."""
    error = as_prepaid_error(exc)
    code = code_of(error)
    internal = exc if code == grpc.StatusCode.INTERNAL else None
    _log_call(method, started, code.name, internal, reason=error.reason, error=error.message, **fields)
    return error


def unary(method: str):
    """Map errors to statuses and log the call."""
    def wrap(fn):
        @functools.wraps(fn)
        async def handler(self, request, context):
            started = time.monotonic()
            try:
                response = await fn(self, request, context)
            except Exception as exc:  # every failure becomes a status with ErrorInfo, never a bare UNKNOWN
                await abort(context, _failed(method, started, exc))
            _log_call(method, started, "OK")
            return response
        return handler
    return wrap


def streaming(method: str):
    def wrap(fn):
        @functools.wraps(fn)
        async def handler(self, request, context):
            started, sent = time.monotonic(), 0
            try:
                async for response in fn(self, request, context):
                    sent += 1
                    yield response
            except Exception as exc:
                error = _failed(method, started, exc, responses=sent)
                set_status(context, error)  # ends the stream with it (abort() here can race pending reads)
                return
            except asyncio.CancelledError:
                _log_call(method, started, "CANCELLED", responses=sent)
                raise
            _log_call(method, started, "OK", responses=sent)
        return handler
    return wrap


def _enum(value: int) -> Any:
    """A proto enum field from our IntEnum (same numbers)."""
    return int(value)


def _timestamp(at_us: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=at_us // 1_000_000, nanos=(at_us % 1_000_000) * 1000)


def event_message(e: Event) -> pb.BalanceEvent:
    return pb.BalanceEvent(cursor=str(e.cursor) if e.cursor else "", type=_enum(e.type),
                           account_id=e.account_id, wallet=e.wallet, balance_minor=e.balance_minor,
                           at=_timestamp(e.at_us), cause=e.cause, level_minor=e.level_minor)


def movement_message(r: MovementResult) -> pb.MovementResponse:
    return pb.MovementResponse(idempotency_key=r.key, sequence=r.sequence, account_id=r.account_id,
                               wallet=r.wallet, amount_minor=r.change_minor, balance_minor=r.balance_minor,
                               status=_enum(r.status), events=[event_message(e) for e in r.events],
                               replayed=r.replayed)


def deduct_response(result: DeductionResult, window: int = 0) -> pb.DeductResponse:
    return pb.DeductResponse(
        batch_id=result.batch_id, sequence=result.sequence, deductions=result.deductions_ipc,
        events=[event_message(e) for e in result.events], readings=result.readings,
        anomalies=result.anomaly_total, anomaly_rows=result.anomalies_ipc,
        anomaly_counts=result.anomaly_counts, anomalies_page_token=result.anomalies_page_token,
        deducted_minor=result.deducted_minor, replayed=result.replayed, window=window)


def wallet_message(state: WalletState, policy: WalletPolicy) -> pb.WalletBalance:
    return pb.WalletBalance(wallet=state.wallet, balance_minor=state.balance_minor,
                            status=_enum(state.status), low_balance_minor=policy.low_balance_minor,
                            cut_off_below_minor=policy.cut_below_minor if policy.cut_off else 0,
                            warning_levels_minor=policy.levels_minor)


class RatingServicer(rating_pb2_grpc.RatingServiceServicer):
    def __init__(self, service: PrepaidService):
        self.service = service

    @unary("RateBatch")
    async def RateBatch(self, request, context):
        table = read_ipc(request.readings)
        config = self.service.config
        # stateless: off the event loop; the reading window counts from the server's clock. With the
        # site's groups, rate() splits them over this batch as one whole input (docs/apportionment.md)
        result = await asyncio.to_thread(rate, table, config=config, now=self.service.now())
        return pb.RateBatchResponse(charges=table_bytes(result.charges),
                                    anomalies=table_bytes(result.anomalies), readings=table.num_rows)


class PrepaidServicer(rating_pb2_grpc.PrepaidServiceServicer):
    def __init__(self, service: PrepaidService, *, stream_window: int = 8):
        self.service = service
        self.stream_window = stream_window
        self.draining = asyncio.Event()

    # ---- deductions --------------------------------------------------------------------------

    @unary("Deduct")
    async def Deduct(self, request, context):
        readings = SentBatch(read_ipc(request.readings), request.readings)
        result = await self.service.deduct(request.batch_id, readings, deadline=_deadline(context))
        return deduct_response(result)

    @streaming("StreamDeduct")
    async def StreamDeduct(self, request_iterator, context):
        """Batches are rated and committed in the order they arrive
        (PrepaidService.open_stream). Answers go out in order. At most
        `stream_window` batches wait unanswered: the reader stops taking
        messages and HTTP/2 flow control holds the client. An error ends the
        stream after the answers of the batches before it; the batches after
        it are refused, never applied."""
        call = _DeductStream(self, request_iterator, context)
        try:
            async for response in call.answers():
                yield response
        finally:
            call.stop()

    @unary("GetAnomalies")
    async def GetAnomalies(self, request, context):
        rows, token, total = await self.service.anomalies(request.batch_id, request.page_token)
        return pb.GetAnomaliesResponse(batch_id=request.batch_id, anomaly_rows=table_bytes(rows),
                                       next_page_token=token, anomalies=total)

    # ---- movements ---------------------------------------------------------------------------

    async def _move(self, kind: str, request, context) -> pb.MovementResponse:
        movement = Movement(kind, request.idempotency_key, request.account_id, request.wallet,
                            request.amount_minor, _method_of(request.method), request.reason,
                            request.reference)
        return movement_message(await self.service.move(movement, deadline=_deadline(context)))

    @unary("TopUp")
    async def TopUp(self, request, context):
        return await self._move("topup", request, context)

    @unary("Refund")
    async def Refund(self, request, context):
        if not self.service.policy.refund_approval:
            return await self._move("refund", request, context)
        movement = Movement("refund", request.idempotency_key, request.account_id, request.wallet,
                            request.amount_minor, _method_of(request.method), request.reason,
                            request.reference)
        state = await self.service.request_refund(movement, requested_by=_acting(request.actor))
        return await self._refund_answer(state)

    @unary("DecideRefund")
    async def DecideRefund(self, request, context):
        state = await self.service.decide_refund(
            request.idempotency_key, approve=request.approve, decided_by=_acting(request.actor),
            reason=request.reason, deadline=_deadline(context))
        return await self._refund_answer(state)

    async def _refund_answer(self, state) -> pb.MovementResponse:
        """A refund with approval: the movement once approved, else the wallet as it stands."""
        told = dict(refund_status=state.status, requested_by=state.requested_by, decided_by=state.decided_by,
                    replayed=state.replayed, idempotency_key=state.key, account_id=state.account_id,
                    wallet=state.wallet)
        r = state.movement
        if r is not None:
            return pb.MovementResponse(sequence=r.sequence, amount_minor=r.change_minor,
                                       balance_minor=r.balance_minor, status=_enum(r.status),
                                       events=[event_message(e) for e in r.events], **told)
        wallets = {s.wallet: s for s, _ in await self.service.balance(state.account_id)}
        now = wallets.get(state.wallet)
        return pb.MovementResponse(sequence=state.sequence, balance_minor=now.balance_minor if now else 0,
                                   status=_enum(now.status) if now else pb.WALLET_STATUS_OK, **told)

    @unary("Adjust")
    async def Adjust(self, request, context):
        return await self._move("adjust", request, context)

    # ---- balances and events -----------------------------------------------------------------

    def _account_message(self, account_id: str, wallets) -> pb.AccountBalance:
        site = self.service.config.site
        return pb.AccountBalance(account_id=account_id, wallets=[wallet_message(s, p) for s, p in wallets],
                                 currency=site.currency, minor_unit_exponent=site.minor_unit_exponent)

    @unary("GetBalance")
    async def GetBalance(self, request, context):
        return self._account_message(request.account_id, await self.service.balance(request.account_id))

    @unary("ListBalances")
    async def ListBalances(self, request, context):
        if request.page_size < 0:
            raise errors.InvalidArgument("page_size must not be negative", field="page_size")
        statuses = tuple(Status(s) for s in request.statuses if s in {int(v) for v in Status})
        where = BalanceFilter(wallet=request.wallet, below_threshold=request.below_threshold,
                              statuses=statuses)
        accounts, token = await self.service.list_balances(where, request.page_size, request.page_token)
        return pb.ListBalancesResponse(accounts=[self._account_message(a, w) for a, w in accounts],
                                       next_page_token=token)

    @streaming("WatchEvents")
    async def WatchEvents(self, request, context):
        try:
            after = int(request.after_cursor or 0)
        except ValueError:
            raise errors.InvalidArgument(f"bad cursor {request.after_cursor!r}",
                                         field="after_cursor") from None
        events = self.service.events(after, types=tuple(request.types), account_id=request.account_id,
                                     stop_at_end=request.stop_at_end)
        draining = asyncio.ensure_future(self.draining.wait())
        try:
            while True:
                step = asyncio.ensure_future(anext(events, None))
                await asyncio.wait([step, draining], return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    step.cancel()  # and let it end: the generator cannot close while it runs
                    await asyncio.wait([step])
                    raise errors.Unavailable("the server is shutting down: resume from the last cursor",
                                             reason="DRAINING")
                event = step.result()
                if event is None:
                    return
                yield event_message(event)
        finally:
            draining.cancel()
            await events.aclose()

    @unary("LoadConfig")
    async def LoadConfig(self, request, context):
        version = await self.service.load_config(
            site_toml=request.site_toml, tariffs_toml=tuple(request.tariffs_toml), meters=request.meters,
            accounts=request.accounts, groups=request.groups)
        config = self.service.config
        return pb.LoadConfigResponse(version=version, meters=len(config.registry.meters),
                                     accounts=len(config.registry.accounts), tariffs=len(config.tariffs))


class _DeductStream:
    """One StreamDeduct call: a reader task fills the inbox (at most `window`
    messages); each batch is started as it is taken (its lookups overlap the
    rating of the one before, its rating that one's commit and apply) and
    answered in order; at most `window` batches are in flight."""

    def __init__(self, servicer: PrepaidServicer, request_iterator, context):
        self.servicer, self.context = servicer, context
        self.window = servicer.stream_window
        self.stream = servicer.service.open_stream()
        self.inbox: asyncio.Queue = asyncio.Queue(maxsize=self.window)
        self.reader = asyncio.ensure_future(self._pump(request_iterator))
        self.inflight: deque = deque()  # started batches (Deduction), oldest first
        self.next_request: asyncio.Future | None = None
        self.ended = False
        self.failure: BaseException | None = None

    async def answers(self):
        """The answers in order, then (after an error or on drain) the last message."""
        while True:
            if (self.next_request is None and not self.ended and self.failure is None
                    and len(self.inflight) < self.window):
                self.next_request = asyncio.ensure_future(self.inbox.get())
            oldest = self.inflight[0].result if self.inflight else None
            waiting = [f for f in (self.next_request, oldest) if f is not None]
            if not waiting:
                break
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if self.inflight and self.inflight[0].result.done():
                response = self._answer_oldest()
                if response is not None:
                    yield response
            elif self.next_request is not None and self.next_request.done():
                request, self.next_request = self.next_request.result(), None
                self._take(request)
        error = self._last_error()
        if error is not None:
            # Said in a last message too: a client write racing the end of the
            # stream can replace the final status with INTERNAL on its side.
            yield pb.DeductResponse(batch_id=error.metadata.get("batch_id", ""), error=rpc_status(error),
                                    window=self.window)
            raise error

    def _answer_oldest(self) -> pb.DeductResponse | None:
        started = self.inflight.popleft()
        try:
            result = started.result.result()
        except Exception as exc:
            self.failure = exc  # the batches after it are refused: stop here
            self.inflight.clear()
            return None
        return deduct_response(result, window=self.window)

    def _take(self, request) -> None:
        """A message from the reader: the end, the reader's error, or a batch to start."""
        if request is _END:
            self.ended = True
        elif isinstance(request, BaseException):
            self.failure = request
        else:
            try:
                readings = SentBatch(read_ipc(request.readings), request.readings)
            except errors.PrepaidError as exc:
                self.failure = exc  # answer the batches before it first
                return
            self.inflight.append(self.stream.start(request.batch_id, readings))
            assert len(self.inflight) <= self.window, "more batches in flight than the window"

    def _last_error(self) -> errors.PrepaidError | None:
        """What ends the stream: the first failure, or the drain of the server."""
        if self.failure is None and self.servicer.draining.is_set():
            self.failure = errors.Unavailable("the server is shutting down: resend the batches not answered",
                                              reason="DRAINING")
        return None if self.failure is None else as_prepaid_error(self.failure)

    def stop(self) -> None:
        if self.next_request is not None:
            self.next_request.cancel()
        # Stop reading only once the call is over: cancelling a pending read
        # before the status is sent can end the call with INTERNAL instead.
        if self.ended or self.context.done():
            self.reader.cancel()
        else:
            reader = self.reader
            self.context.add_done_callback(lambda _context: reader.cancel())

    async def _pump(self, request_iterator) -> None:
        inbox, draining = self.inbox, self.servicer.draining
        try:
            async for request in request_iterator:
                if draining.is_set():
                    break
                await inbox.put(request)
            await inbox.put(_END)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client went away or sent garbage
            await inbox.put(exc)
