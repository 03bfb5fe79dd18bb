"""Python client of the rating gRPC API, sync (`RatingClient`) and async (`AsyncRatingClient`).

```python
from rating.client import RatingClient

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
Retrying a call with the same batch id or idempotency key is always safe.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

import grpc
import pyarrow as pa

from rating.prepaid.records import read_table_bytes, table_bytes
from rating.server.status import error_info, status_info
from rating.v1 import health_pb2, health_pb2_grpc, rating_pb2_grpc
from rating.v1 import rating_pb2 as pb

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
        trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
        info = error_info(trailing) if trailing else None
        reason, metadata = info if info else ("", {})
        return cls(error.code(), error.details() or "", reason, metadata)


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


def _movement(key, account_id, wallet, amount_minor, method, reason, reference) -> pb.MovementRequest:
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}")
    return pb.MovementRequest(idempotency_key=key, account_id=account_id, wallet=wallet,
                              amount_minor=amount_minor, method=METHODS[method], reason=reason,
                              reference=reference)


class RatingClient:
    """Blocking client. `target` is host:port; `token` a bearer token; `tls`
    turns on TLS (with `root_certificates`, and `client_cert`/`client_key` for
    mutual TLS); `timeout_s` is the deadline of each unary call."""

    def __init__(self, target: str, *, token: str | None = None, tls: bool = False,
                 root_certificates: bytes | None = None, client_cert: bytes | None = None,
                 client_key: bytes | None = None, timeout_s: float = 30.0,
                 max_message_bytes: int = DEFAULT_MESSAGE_BYTES):
        creds = _credentials(tls, root_certificates, client_cert, client_key)
        options = _options(max_message_bytes)
        self.channel = (grpc.secure_channel(target, creds, options) if creds
                        else grpc.insecure_channel(target, options))
        self.prepaid = rating_pb2_grpc.PrepaidServiceStub(self.channel)
        self.rating = rating_pb2_grpc.RatingServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout_s = timeout_s

    def __enter__(self) -> RatingClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _call(self, method, request, timeout_s: float | None = None):
        try:
            return method(request, metadata=self.metadata, timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as error:
            raise ClientError.of(error) from None

    def deduct(self, batch_id: str, readings, *, timeout_s: float | None = None) -> DeductReply:
        request = pb.DeductRequest(batch_id=batch_id, readings=readings_bytes(readings))
        return DeductReply.of(self._call(self.prepaid.Deduct, request, timeout_s))

    def stream(self, batches: Iterable[tuple[str, object]], *, window: int = 8) -> Iterator[DeductReply]:
        """Stream (batch_id, readings) pairs; yields one reply per batch, in
        order. At most `window` batches are sent unanswered; the next pair is
        taken from `batches` only when it can be sent."""
        credit = threading.Semaphore(window)
        stop = threading.Event()

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
                yield pb.DeductRequest(batch_id=batch_id, readings=readings_bytes(readings))

        call = self.prepaid.StreamDeduct(requests(), metadata=self.metadata)
        try:
            for response in call:
                if response.HasField("error"):
                    raise _stream_error(response)
                credit.release()
                yield DeductReply.of(response)
        except grpc.RpcError as error:
            raise ClientError.of(error) from None
        finally:
            stop.set()
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
                                                         reason, reference))

    def refund(self, account_id: str, wallet: str, amount_minor: int, *, key: str,
               method: str = "bank_transfer", reason: str = "", reference: str = "") -> pb.MovementResponse:
        return self._call(self.prepaid.Refund, _movement(key, account_id, wallet, amount_minor, method,
                                                          reason, reference))

    def adjust(self, account_id: str, wallet: str, amount_minor: int, *, key: str, reason: str,
               reference: str = "") -> pb.MovementResponse:
        return self._call(self.prepaid.Adjust, _movement(key, account_id, wallet, amount_minor, "",
                                                          reason, reference))

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
                    accounts: bytes = b"") -> pb.LoadConfigResponse:
        return self._call(self.prepaid.LoadConfig, pb.LoadConfigRequest(
            site_toml=site_toml, tariffs_toml=list(tariffs_toml), meters=meters, accounts=accounts))

    def health(self, service: str = "") -> int:
        return self._call(self.health_stub.Check, health_pb2.HealthCheckRequest(service=service)).status


class AsyncRatingClient:
    """The same API for asyncio code (grpc.aio)."""

    def __init__(self, target: str, *, token: str | None = None, tls: bool = False,
                 root_certificates: bytes | None = None, client_cert: bytes | None = None,
                 client_key: bytes | None = None, timeout_s: float = 30.0,
                 max_message_bytes: int = DEFAULT_MESSAGE_BYTES):
        creds = _credentials(tls, root_certificates, client_cert, client_key)
        options = _options(max_message_bytes)
        self.channel = (grpc.aio.secure_channel(target, creds, options) if creds
                        else grpc.aio.insecure_channel(target, options))
        self.prepaid = rating_pb2_grpc.PrepaidServiceStub(self.channel)
        self.rating = rating_pb2_grpc.RatingServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout_s = timeout_s

    async def __aenter__(self) -> AsyncRatingClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    async def _call(self, method, request, timeout_s: float | None = None):
        try:
            return await method(request, metadata=self.metadata, timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as error:
            raise ClientError.of(error) from None

    async def deduct(self, batch_id: str, readings, *, timeout_s: float | None = None) -> DeductReply:
        request = pb.DeductRequest(batch_id=batch_id, readings=readings_bytes(readings))
        return DeductReply.of(await self._call(self.prepaid.Deduct, request, timeout_s))

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
                                                               reason, reference))

    async def refund(self, account_id: str, wallet: str, amount_minor: int, *, key: str,
                     method: str = "bank_transfer", reason: str = "",
                     reference: str = "") -> pb.MovementResponse:
        return await self._call(self.prepaid.Refund, _movement(key, account_id, wallet, amount_minor, method,
                                                                reason, reference))

    async def adjust(self, account_id: str, wallet: str, amount_minor: int, *, key: str, reason: str,
                     reference: str = "") -> pb.MovementResponse:
        return await self._call(self.prepaid.Adjust, _movement(key, account_id, wallet, amount_minor, "",
                                                                reason, reference))

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
        return (await self._call(self.health_stub.Check, request)).status


def _stream_error(response: pb.DeductResponse) -> ClientError:
    """The error a stream ended with, from its last message."""
    info = status_info(response.error) or ("", {})
    return ClientError(grpc.StatusCode(_CODES[response.error.code]), response.error.message, *info)


_CODES = {code.value[0]: code.value for code in grpc.StatusCode}


async def _aiter(items: Iterable):
    for item in items:
        yield item
