"""Python client of the rating gRPC API, sync (`RatingClient`) and async (`AsyncRatingClient`).

```python
from rating.client.calls import RatingClient

with RatingClient("127.0.0.1:50051", token="s3cret") as client:
    client.topup("F0001", "electricity", 50_000, key="receipt-2025-0001", method="cash")
    for reply in client.stream(("b%d" % i, batch) for i, batch in enumerate(batches)):
        print(reply.batch_id, reply.deducted_minor, [e.type for e in reply.events])
    print(client.balance("F0001"))
```

Amounts are int64 minor units (`amount_minor`). Every failed call raises
`ClientError` with the gRPC status code, the message and, when the server
sent them, the reason and metadata of its ErrorInfo details (for example
ALREADY_EXISTS, reason IDEMPOTENCY_CONFLICT, with both payload hashes).

Unary calls whose outcome is unknown (DEADLINE_EXCEEDED, CANCELLED, UNKNOWN,
INTERNAL, UNAVAILABLE unless the server said `committed: "false"`:
rating.client.retry) are retried with the same batch id or
idempotency key, with jittered exponential backoff, until `timeout_s`; each
attempt's deadline starts at `attempt_timeout_s` and doubles. A deduction or
movement still unanswered then raises `OutcomeUnknown`, which names the key:
it may have been applied, and sending it again with that key applies it at
most once. Streams are not retried here (`rating stream` resends from the
first unanswered batch).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

import grpc
import pyarrow as pa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rating.client.retry import Attempts, outcome_unknown
from rating.client.status import call_status, status_info
from rating.prepaid.records import read_table_bytes, table_bytes
from rating.v1 import rating_pb2 as pb
from rating.v1 import rating_pb2_grpc

METHODS = {"": pb.PAYMENT_METHOD_UNSPECIFIED, "online": pb.PAYMENT_METHOD_ONLINE,
           "cash": pb.PAYMENT_METHOD_CASH, "cheque": pb.PAYMENT_METHOD_CHEQUE,
           "bank_transfer": pb.PAYMENT_METHOD_BANK_TRANSFER}
DEFAULT_MESSAGE_BYTES = 64 << 20


class ClientError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, reason: str = "", metadata: dict | None = None):
        super().__init__(f"{code.name}: {message}")
        self.code, self.message, self.reason, self.metadata = code, message, reason, metadata or {}

    @classmethod
    def of(cls, error: grpc.RpcError) -> ClientError:
        reason, metadata = status_info(call_status(error)) or ("", {})
        return cls(error.code(), error.details() or "", reason, metadata)


class OutcomeUnknown(ClientError):
    """Retried until the timeout without an answer: the operation may or may
    not have been applied. Send it again with the same `key`."""

    def __init__(self, last: ClientError, key: str, attempts: Attempts):
        super().__init__(last.code, f"outcome unknown after {attempts.made} attempts in "
                         f"{attempts.elapsed_s():.1f} s (last: {last.code.name}: {last.message}); it may "
                         f"have been applied: retry with the same key {key!r}", last.reason, last.metadata)
        self.key, self.attempts = key, attempts.made


def _telling(latest: ClientError, earlier: ClientError | None) -> ClientError:
    """The failure to report: the server's own answer of an earlier attempt
    rather than a later attempt's local deadline (the last, shortest one, which
    a loaded server can miss)."""
    if (earlier is not None and earlier.reason and not latest.reason
            and latest.code is grpc.StatusCode.DEADLINE_EXCEEDED):
        return earlier
    return latest


def _pause_before_retry(failure: ClientError, attempts: Attempts, key: str | None) -> float:
    """How long to wait before sending the call again; raises the failure
    when it is final (not applied), or OutcomeUnknown when the time is up."""
    if not outcome_unknown(failure.code, failure.metadata):
        raise failure
    pause = attempts.pause_s()
    if pause is None:
        raise failure if key is None else OutcomeUnknown(failure, key, attempts)
    return pause


class _Watchdog:
    """Cancels a stream when sent batches wait `timeout_s` without an answer."""

    def __init__(self, cancel, timeout_s: float):
        self.timeout_s, self.fired = timeout_s, False
        self._outstanding, self._since = 0, time.monotonic()
        self._lock, self._done = threading.Lock(), threading.Event()
        threading.Thread(target=self._watch, args=(cancel,), daemon=True, name="stream-watchdog").start()

    def sent(self) -> None:
        with self._lock:
            if self._outstanding == 0:
                self._since = time.monotonic()
            self._outstanding += 1

    def answered(self) -> None:
        with self._lock:
            self._outstanding -= 1
            self._since = time.monotonic()

    def stop(self) -> None:
        self._done.set()

    def _watch(self, cancel) -> None:
        while not self._done.wait(min(self.timeout_s / 4, 0.25)):
            with self._lock:
                late = self._outstanding > 0 and time.monotonic() - self._since > self.timeout_s
            if late:
                self.fired = True
                cancel()
                return


@dataclass(frozen=True)
class DeductReply:
    batch_id: str
    sequence: int
    deductions: pa.Table  # account_id, wallet, amount_minor, balance_minor, status
    events: list  # rating.v1.BalanceEvent
    readings: int
    anomalies: pa.Table  # the first page of anomaly rows (all of them: client.anomalies(batch_id))
    deducted_minor: int
    replayed: bool
    window: int
    anomalies_total: int  # all of the batch's anomalies
    anomaly_counts: dict[str, int]  # per code, all of them
    anomalies_page_token: str  # set when `anomalies` is not all of them: the next page

    @classmethod
    def of(cls, m: pb.DeductResponse) -> DeductReply:
        return cls(m.batch_id, m.sequence, read_table_bytes(m.deductions), list(m.events), m.readings,
                   read_table_bytes(m.anomaly_rows), m.deducted_minor, m.replayed, m.window, m.anomalies,
                   dict(m.anomaly_counts), m.anomalies_page_token)


def readings_bytes(readings: pa.Table | pa.RecordBatch | bytes) -> bytes:
    if isinstance(readings, (bytes, bytearray, memoryview)):
        return bytes(readings)
    if isinstance(readings, pa.RecordBatch):
        readings = pa.Table.from_batches([readings])
    return table_bytes(readings)


def _credentials(tls: bool, root_certificates: bytes | None, client_cert: bytes | None,
                 client_key: bytes | None) -> grpc.ChannelCredentials | None:
    if not tls:
        return None
    return grpc.ssl_channel_credentials(root_certificates=root_certificates, private_key=client_key,
                                        certificate_chain=client_cert)


def _options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.keepalive_time_ms", 30_000), ("grpc.keepalive_timeout_ms", 10_000)]


def _movement(key, account_id, wallet, amount_minor, method, reason, reference,
              actor: str = "") -> pb.MovementRequest:
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}")
    return pb.MovementRequest(idempotency_key=key, account_id=account_id, wallet=wallet,
                              amount_minor=amount_minor, method=METHODS[method], reason=reason,
                              reference=reference, actor=actor)


class RatingClient:
    """Blocking client. `target` is host:port; `token` a bearer token; `tls`
    turns on TLS (with `root_certificates`, and `client_cert`/`client_key` for
    mutual TLS); `timeout_s` is how long a unary call may take, retries
    included, and `attempt_timeout_s` the first attempt's deadline (None: the
    whole timeout)."""

    def __init__(self, target: str, *, token: str | None = None, tls: bool = False,
                 root_certificates: bytes | None = None, client_cert: bytes | None = None,
                 client_key: bytes | None = None, timeout_s: float = 30.0,
                 attempt_timeout_s: float | None = None, max_message_bytes: int = DEFAULT_MESSAGE_BYTES):
        creds = _credentials(tls, root_certificates, client_cert, client_key)
        options = _options(max_message_bytes)
        self.channel = (grpc.secure_channel(target, creds, options) if creds
                        else grpc.insecure_channel(target, options))
        self.prepaid = rating_pb2_grpc.PrepaidServiceStub(self.channel)
        self.rating = rating_pb2_grpc.RatingServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout_s, self.attempt_timeout_s = timeout_s, attempt_timeout_s

    def __enter__(self) -> RatingClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _call(self, method, request, timeout_s: float | None = None, *, key: str | None = None):
        """The call, retried while its outcome is unknown (`key`: the batch id or idempotency key)."""
        attempts = Attempts(timeout_s or self.timeout_s, self.attempt_timeout_s)
        failure = None
        while True:
            try:
                return method(request, metadata=self.metadata, timeout=attempts.timeout_s())
            except grpc.RpcError as error:
                failure = _telling(ClientError.of(error), failure)
            time.sleep(_pause_before_retry(failure, attempts, key))

    def _once(self, method, request):
        try:
            return method(request, metadata=self.metadata, timeout=self.timeout_s)
        except grpc.RpcError as error:
            raise ClientError.of(error) from None

    def deduct(self, batch_id: str, readings, *, timeout_s: float | None = None) -> DeductReply:
        request = pb.DeductRequest(batch_id=batch_id, readings=readings_bytes(readings))
        return DeductReply.of(self._call(self.prepaid.Deduct, request, timeout_s, key=batch_id))

    def stream(self, batches: Iterable[tuple[str, object]], *, window: int = 8,
               answer_timeout_s: float | None = None) -> Iterator[DeductReply]:
        """Stream (batch_id, readings) pairs; yields one reply per batch, in
        order. At most `window` batches are sent unanswered; the next pair is
        taken from `batches` only when it can be sent. With `answer_timeout_s`,
        batches left that long without an answer end the stream with
        DEADLINE_EXCEEDED (their outcome is unknown: resend them)."""
        credit = threading.Semaphore(window)
        stop = threading.Event()
        cancel: list = []  # the call, once made: what the watchdog cancels
        watchdog = _Watchdog(lambda: cancel[0].cancel(), answer_timeout_s) if answer_timeout_s else None

        def requests():
            source = iter(batches)
            while True:
                while not credit.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                pair = next(source, None)
                if pair is None:
                    return
                batch_id, readings = pair
                request = pb.DeductRequest(batch_id=batch_id, readings=readings_bytes(readings))
                if watchdog:
                    watchdog.sent()
                yield request

        call = self.prepaid.StreamDeduct(requests(), metadata=self.metadata)
        cancel.append(call)
        try:
            for response in call:
                if response.HasField("error"):
                    raise _stream_error(response)
                if watchdog:
                    watchdog.answered()
                credit.release()
                yield DeductReply.of(response)
        except grpc.RpcError as error:
            if watchdog and watchdog.fired:
                raise ClientError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                  f"no answer for {answer_timeout_s:g} s: the stream was cancelled") from None
            raise ClientError.of(error) from None
        finally:
            stop.set()
            if watchdog:
                watchdog.stop()
            call.cancel()

    def anomaly_pages(self, batch_id: str, page_token: str = "") -> Iterator[pa.Table]:
        """A committed batch's anomaly rows, page after page, from `page_token`
        (empty: the first page; a reply's `anomalies_page_token`: the rest)."""
        while True:
            page = self._call(self.prepaid.GetAnomalies,
                              pb.GetAnomaliesRequest(batch_id=batch_id, page_token=page_token))
            yield read_table_bytes(page.anomaly_rows)
            page_token = page.next_page_token
            if not page_token:
                return

    def anomalies(self, batch_id: str) -> pa.Table:
        """Every anomaly row of a committed batch, in row order."""
        return pa.concat_tables(self.anomaly_pages(batch_id))

    def topup(self, account_id: str, wallet: str, amount_minor: int, *, key: str, method: str = "cash",
              reason: str = "", reference: str = "") -> pb.MovementResponse:
        return self._call(self.prepaid.TopUp, _movement(key, account_id, wallet, amount_minor, method,
                                                         reason, reference), key=key)

    def refund(self, account_id: str, wallet: str, amount_minor: int, *, key: str,
               method: str = "bank_transfer", reason: str = "", reference: str = "",
               actor: str = "") -> pb.MovementResponse:
        """Where the site asks for approval, a request: `refund_status` "requested"."""
        return self._call(self.prepaid.Refund, _movement(key, account_id, wallet, amount_minor, method,
                                                          reason, reference, actor), key=key)

    def decide_wallet_refund(self, key: str, *, approve: bool, reason: str = "",
                             actor: str = "") -> pb.MovementResponse:
        """Approve or reject the refund requested under `key` (another approver than the one who asked)."""
        request = pb.DecideWalletRefundRequest(idempotency_key=key, approve=approve, reason=reason,
                                               actor=actor)
        return self._call(self.prepaid.DecideRefund, request, key=key)

    def adjust(self, account_id: str, wallet: str, amount_minor: int, *, key: str, reason: str,
               reference: str = "") -> pb.MovementResponse:
        return self._call(self.prepaid.Adjust, _movement(key, account_id, wallet, amount_minor, "",
                                                          reason, reference), key=key)

    def balance(self, account_id: str) -> pb.AccountBalance:
        return self._call(self.prepaid.GetBalance, pb.GetBalanceRequest(account_id=account_id))

    def list_balances(self, *, wallet: str = "", below_threshold: bool = False, statuses=(),
                      page_size: int = 1000) -> Iterator[pb.AccountBalance]:
        token = ""
        while True:
            page = self._call(self.prepaid.ListBalances, pb.ListBalancesRequest(
                wallet=wallet, below_threshold=below_threshold, statuses=list(statuses), page_size=page_size,
                page_token=token))
            yield from page.accounts
            token = page.next_page_token
            if not token:
                return

    def events(self, after_cursor: str = "", *, types=(), account_id: str = "",
               stop_at_end: bool = False) -> Iterator[pb.BalanceEvent]:
        request = pb.WatchEventsRequest(after_cursor=after_cursor, types=list(types), account_id=account_id,
                                        stop_at_end=stop_at_end)
        call = self.prepaid.WatchEvents(request, metadata=self.metadata)
        try:
            yield from call
        except grpc.RpcError as error:
            raise ClientError.of(error) from None
        finally:
            call.cancel()

    def rate(self, readings) -> tuple[pa.Table, pa.Table]:
        """Stateless batch rating: (charges, anomalies)."""
        reply = self._call(self.rating.RateBatch, pb.RateBatchRequest(readings=readings_bytes(readings)))
        return read_table_bytes(reply.charges), read_table_bytes(reply.anomalies)

    def load_config(self, *, site_toml: str = "", tariffs_toml: Iterable[str] = (), meters: bytes = b"",
                    accounts: bytes = b"", groups: bytes = b"") -> pb.LoadConfigResponse:
        return self._once(self.prepaid.LoadConfig, pb.LoadConfigRequest(
            site_toml=site_toml, tariffs_toml=list(tariffs_toml), meters=meters, accounts=accounts,
            groups=groups))

    def health(self, service: str = "") -> int:
        return self._once(self.health_stub.Check, health_pb2.HealthCheckRequest(service=service)).status


class AsyncRatingClient:
    """The same API for asyncio code (grpc.aio)."""

    def __init__(self, target: str, *, token: str | None = None, tls: bool = False,
                 root_certificates: bytes | None = None, client_cert: bytes | None = None,
                 client_key: bytes | None = None, timeout_s: float = 30.0,
                 attempt_timeout_s: float | None = None, max_message_bytes: int = DEFAULT_MESSAGE_BYTES):
        creds = _credentials(tls, root_certificates, client_cert, client_key)
        options = _options(max_message_bytes)
        self.channel = (grpc.aio.secure_channel(target, creds, options) if creds
                        else grpc.aio.insecure_channel(target, options))
        self.prepaid = rating_pb2_grpc.PrepaidServiceStub(self.channel)
        self.rating = rating_pb2_grpc.RatingServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout_s, self.attempt_timeout_s = timeout_s, attempt_timeout_s

    async def __aenter__(self) -> AsyncRatingClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    async def _call(self, method, request, timeout_s: float | None = None, *, key: str | None = None):
        attempts = Attempts(timeout_s or self.timeout_s, self.attempt_timeout_s)
        failure = None
        while True:
            try:
                return await method(request, metadata=self.metadata, timeout=attempts.timeout_s())
            except grpc.RpcError as error:
                failure = _telling(ClientError.of(error), failure)
            await asyncio.sleep(_pause_before_retry(failure, attempts, key))

    async def _once(self, method, request):
        try:
            return await method(request, metadata=self.metadata, timeout=self.timeout_s)
        except grpc.RpcError as error:
            raise ClientError.of(error) from None

    async def deduct(self, batch_id: str, readings, *, timeout_s: float | None = None) -> DeductReply:
        request = pb.DeductRequest(batch_id=batch_id, readings=readings_bytes(readings))
        return DeductReply.of(await self._call(self.prepaid.Deduct, request, timeout_s, key=batch_id))

    async def stream(self, batches: Iterable[tuple[str, object]] | AsyncIterable[tuple[str, object]], *,
                     window: int = 8) -> AsyncIterator[DeductReply]:
        """Stream (batch_id, readings) pairs; yields one reply per batch, in
        order. At most `window` batches are sent unanswered; the next pair is
        taken from `batches` only when it can be sent."""
        credit = asyncio.Semaphore(window)

        async def requests():
            # gRPC consumes this iterator itself and stops when the call ends, so a
            # server that ends the stream early is never raced by a late write.
            source = (batches if hasattr(batches, "__aiter__") else _aiter(batches)).__aiter__()
            while True:
                await credit.acquire()
                try:
                    batch_id, readings = await source.__anext__()
                except StopAsyncIteration:
                    return
                yield pb.DeductRequest(batch_id=batch_id, readings=readings_bytes(readings))

        call = self.prepaid.StreamDeduct(requests(), metadata=self.metadata)
        try:
            async for response in call:
                if response.HasField("error"):
                    raise _stream_error(response)
                credit.release()
                yield DeductReply.of(response)
        except grpc.RpcError as error:
            raise ClientError.of(error) from None
        finally:
            call.cancel()

    async def anomaly_pages(self, batch_id: str, page_token: str = "") -> AsyncIterator[pa.Table]:
        """A committed batch's anomaly rows, page after page, from `page_token`
        (empty: the first page; a reply's `anomalies_page_token`: the rest)."""
        while True:
            page = await self._call(self.prepaid.GetAnomalies,
                                    pb.GetAnomaliesRequest(batch_id=batch_id, page_token=page_token))
            yield read_table_bytes(page.anomaly_rows)
            page_token = page.next_page_token
            if not page_token:
                return

    async def anomalies(self, batch_id: str) -> pa.Table:
        """Every anomaly row of a committed batch, in row order."""
        return pa.concat_tables([page async for page in self.anomaly_pages(batch_id)])

    async def topup(self, account_id: str, wallet: str, amount_minor: int, *, key: str, method: str = "cash",
                    reason: str = "", reference: str = "") -> pb.MovementResponse:
        return await self._call(self.prepaid.TopUp, _movement(key, account_id, wallet, amount_minor, method,
                                                               reason, reference), key=key)

    async def refund(self, account_id: str, wallet: str, amount_minor: int, *, key: str,
                     method: str = "bank_transfer", reason: str = "",
                     reference: str = "") -> pb.MovementResponse:
        return await self._call(self.prepaid.Refund, _movement(key, account_id, wallet, amount_minor, method,
                                                                reason, reference), key=key)

    async def adjust(self, account_id: str, wallet: str, amount_minor: int, *, key: str, reason: str,
                     reference: str = "") -> pb.MovementResponse:
        return await self._call(self.prepaid.Adjust, _movement(key, account_id, wallet, amount_minor, "",
                                                                reason, reference), key=key)

    async def balance(self, account_id: str) -> pb.AccountBalance:
        return await self._call(self.prepaid.GetBalance, pb.GetBalanceRequest(account_id=account_id))

    async def events(self, after_cursor: str = "", *, types=(), account_id: str = "",
                     stop_at_end: bool = False) -> AsyncIterator[pb.BalanceEvent]:
        request = pb.WatchEventsRequest(after_cursor=after_cursor, types=list(types), account_id=account_id,
                                        stop_at_end=stop_at_end)
        call = self.prepaid.WatchEvents(request, metadata=self.metadata)
        try:
            async for event in call:
                yield event
        except grpc.RpcError as error:
            raise ClientError.of(error) from None
        finally:
            call.cancel()

    async def rate(self, readings) -> tuple[pa.Table, pa.Table]:
        request = pb.RateBatchRequest(readings=readings_bytes(readings))
        reply = await self._call(self.rating.RateBatch, request)
        return read_table_bytes(reply.charges), read_table_bytes(reply.anomalies)

    async def health(self, service: str = "") -> int:
        request = health_pb2.HealthCheckRequest(service=service)
        return (await self._once(self.health_stub.Check, request)).status


def _stream_error(response: pb.DeductResponse) -> ClientError:
    """The error a stream ended with, from its last message."""
    info = status_info(response.error) or ("", {})
    return ClientError(grpc.StatusCode(_CODES[response.error.code]), response.error.message, *info)


_CODES = {code.value[0]: code.value for code in grpc.StatusCode}


async def _aiter(items: Iterable):
    for item in items:
        yield item
