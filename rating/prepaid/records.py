"""What moves between the prepaid service, its balance store and its ledger."""

from __future__ import annotations

import datetime as dt
import functools
import json
import struct
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from rating.prepaid.wallets import STATUS_WORDS, EventType, Status

DEDUCTIONS_SCHEMA = pa.schema([
    ("account_id", pa.string()),
    ("wallet", pa.string()),
    ("amount_minor", pa.int64()),  # debited (the API's column name); negative is a credit
    ("balance_minor", pa.int64()),  # after the batch
    ("status", pa.string()),
])
MOVEMENT_KINDS = ("topup", "refund", "adjust", "use", "session", "gate_payment")
# Debits asked as a positive amount: a refund and a priced use (docs/usage.md) never take the
# wallet below 0 (`FLOORED_KINDS`); a parking session that has ended debits what it cost.
DEBIT_KINDS = frozenset({"refund", "use", "session"})
FLOORED_KINDS = frozenset({"refund", "use"})
PAYMENT_METHODS = ("online", "cash", "cheque", "bank_transfer")


@dataclass(frozen=True)
class Entries:
    """Ledger entries of one operation: signed balance changes (credit > 0)."""

    account_ids: list[str]
    wallets: list[str]
    changes_minor: np.ndarray  # int64, signed change of each wallet's balance

    def __len__(self) -> int:
        return len(self.account_ids)

    @classmethod
    def one(cls, account_id: str, wallet: str, change_minor: int) -> Entries:
        return cls([account_id], [wallet], np.array([change_minor], dtype=np.int64))

    @classmethod
    def empty(cls) -> Entries:
        return cls([], [], np.empty(0, dtype=np.int64))


@dataclass(frozen=True)
class Event:
    type: EventType
    account_id: str
    wallet: str
    balance_minor: int
    at_us: int = 0  # UTC microseconds
    cause: str = ""
    cursor: int = 0  # event id in the ledger; 0 until recorded
    level_minor: int = 0  # the warning level a low_balance or recovered event concerns

    def to_json(self) -> list:
        row = [int(self.type), self.account_id, self.wallet, self.balance_minor, self.at_us, self.cause]
        return [*row, self.level_minor] if self.level_minor else row

    @classmethod
    def from_json(cls, row: list, cursor: int = 0) -> Event:
        kind, account, wallet, balance, at_us, cause, *level = row  # results kept before levels have six
        return cls(EventType(kind), account, wallet, balance, at_us, cause, cursor, level[0] if level else 0)

    @property
    def at(self) -> dt.datetime:
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=self.at_us)


@dataclass(frozen=True)
class WalletState:
    account_id: str
    wallet: str
    balance_minor: int
    status: Status


@dataclass(frozen=True)
class Applied:
    """What a balance store returns for one operation: per entry, the balance
    and state after it, and the events of the changes it made."""

    balances_minor: np.ndarray  # int64, one per entry
    statuses: np.ndarray  # int8 Status, one per entry
    events: list[Event]


@dataclass(frozen=True)
class AnomalyPages:
    """A batch's anomaly rows cut into pages of at most `rows_max` rows (the
    setting anomaly_rows_max when the batch was rated), so that every answer
    fits in a message, each page encoded once where the batch is rated: the
    first as plain Arrow IPC (it goes into the ledger's request row, the answer
    and the stored result as it is), the later ones compressed into the ledger
    (GetAnomalies reads them back)."""

    first_ipc: bytes
    later_zstd: tuple[bytes, ...]
    counts: dict[str, int]  # anomalies per code, all of them

    @classmethod
    def cut(cls, anomalies: pa.Table, rows_max: int) -> AnomalyPages:
        starts = range(0, anomalies.num_rows, rows_max)
        pages = [anomalies.slice(start, rows_max) for start in starts] or [anomalies]
        counted = pc.value_counts(anomalies.column("code"))
        codes, counts = counted.field("values").to_pylist(), counted.field("counts").to_pylist()
        return cls(table_bytes(pages[0]), tuple(table_bytes(p, compression="zstd") for p in pages[1:]),
                   dict(sorted(zip(codes, counts, strict=True))))

    def summary(self) -> dict:
        """What an answer says of them beside the first page (kept in the ledger as JSON)."""
        return _anomaly_summary(sum(self.counts.values()), self.counts, 1 + len(self.later_zstd))


@dataclass(frozen=True)
class DeductionResult:
    batch_id: str
    sequence: int
    deductions: pa.Table  # DEDUCTIONS_SCHEMA
    events: list[Event]
    readings: int
    anomalies_ipc: bytes  # the first page (AnomalyPages), as Arrow IPC
    anomaly_total: int
    anomaly_counts: dict[str, int]
    anomaly_pages: int
    replayed: bool = False

    @property
    def deducted_minor(self) -> int:
        return int(np.asarray(self.deductions.column("amount_minor")).sum())

    @functools.cached_property
    def deductions_ipc(self) -> bytes:
        return table_bytes(self.deductions)

    @functools.cached_property
    def anomalies(self) -> pa.Table:
        """The first page of anomaly rows."""
        return read_table_bytes(self.anomalies_ipc)

    @classmethod
    def of_commit(cls, row, entries: Entries, applied: Applied) -> DeductionResult:
        """A committed batch's answer: what its request row (ledger.base.OpRow) says
        (readings, the first page of anomalies and their summary) and what the store applied."""
        head, first_page = unpack_parts(row.request)
        meta = json.loads(head)
        table = deductions_table(entries, applied.balances_minor, applied.statuses)
        return cls(meta["batch_id"], row.seq, table, applied.events, meta["readings"], first_page,
                   meta["anomalies"], meta["anomaly_counts"], meta["anomaly_pages"])

    def to_bytes(self) -> bytes:
        """The stored form, compact: account, wallet and amount of each row are
        the operation's ledger entries (in the same order), so only balances
        and states are kept, with the first page of anomalies as it came."""
        head = json.dumps({"batch_id": self.batch_id, "sequence": self.sequence, "readings": self.readings,
                           "events": [e.to_json() for e in self.events], **self.anomaly_summary()}).encode()
        balances = np.asarray(self.deductions.column("balance_minor"), dtype="<i8")
        states = pc.index_in(self.deductions.column("status"), value_set=STATUS_NAMES).to_numpy()
        return pack_parts(head, balances.tobytes(), states.astype(np.int8).tobytes(), self.anomalies_ipc)

    @classmethod
    def from_bytes(cls, data: bytes, entries: Entries, *, replayed: bool = True) -> DeductionResult:
        head, balances, states, anomalies = unpack_parts(data)
        meta = json.loads(head)
        table = deductions_table(entries, np.frombuffer(balances, dtype="<i8"),
                                 np.frombuffer(states, dtype=np.int8))
        return cls(meta["batch_id"], meta["sequence"], table, [Event.from_json(e) for e in meta["events"]],
                   meta["readings"], anomalies, meta["anomalies"], meta["anomaly_counts"],
                   meta["anomaly_pages"], replayed)

    def anomaly_summary(self) -> dict:
        return _anomaly_summary(self.anomaly_total, self.anomaly_counts, self.anomaly_pages)

    @property
    def anomalies_page_token(self) -> str:
        """The token of the page after the first, when there is one."""
        return page_token(1, self.anomaly_pages)


def _anomaly_summary(total: int, counts: dict[str, int], pages: int) -> dict:
    return {"anomalies": total, "anomaly_counts": counts, "anomaly_pages": pages}


def page_token(page: int, pages: int) -> str:
    """A page's token (its number as text); empty past the last page."""
    return str(page) if page < pages else ""


STATUS_NAMES = pa.array(STATUS_WORDS)  # by Status value


def deductions_table(entries: Entries, balances_minor: np.ndarray, statuses: np.ndarray) -> pa.Table:
    """What a batch did to each wallet (DEDUCTIONS_SCHEMA), in entry order."""
    return pa.table({
        "account_id": pa.array(entries.account_ids, pa.string()),
        "wallet": pa.array(entries.wallets, pa.string()),
        "amount_minor": pa.array(-entries.changes_minor, pa.int64()),
        "balance_minor": pa.array(balances_minor, pa.int64()),
        "status": STATUS_NAMES.take(pa.array(statuses.astype(np.int64))),
    }, schema=DEDUCTIONS_SCHEMA)


@dataclass(frozen=True)
class SentBatch:
    """A deduction batch's readings, decoded and checked (rating.server.arrow_io),
    with the Arrow IPC bytes the client sent: the planner process takes those as
    they came. `ipc` is None when the caller handed a table."""

    table: pa.Table
    ipc: bytes | None = None

    @classmethod
    def of(cls, readings: pa.Table | SentBatch) -> SentBatch:
        return readings if isinstance(readings, SentBatch) else cls(readings)

    def ipc_bytes(self) -> bytes:
        return self.ipc if self.ipc is not None else table_bytes(self.table)


@dataclass(frozen=True)
class Movement:
    """A top-up, refund, adjustment, priced use, parking session or gate payment, as asked."""

    kind: str  # MOVEMENT_KINDS
    key: str  # idempotency key
    account_id: str
    wallet: str
    requested_minor: int  # as asked (the request's amount_minor): top-up and refund > 0, adjustment signed
    method: str = ""
    reason: str = ""
    reference: str = ""

    @property
    def change_minor(self) -> int:
        """The signed change of the balance."""
        return -self.requested_minor if self.kind in DEBIT_KINDS else self.requested_minor

    def canonical(self) -> bytes:
        return json.dumps([self.kind, self.account_id, self.wallet, self.requested_minor, self.method,
                           self.reason, self.reference]).encode()


@dataclass(frozen=True)
class MovementResult:
    key: str
    sequence: int
    account_id: str
    wallet: str
    change_minor: int  # signed change of the balance (the answer's amount_minor)
    balance_minor: int
    status: Status
    events: list[Event] = field(default_factory=list)
    replayed: bool = False

    def to_bytes(self) -> bytes:
        return json.dumps({
            "key": self.key, "sequence": self.sequence, "account_id": self.account_id,
            # stored as "amount_minor", the answer's name (results already in ledgers read back)
            "wallet": self.wallet, "amount_minor": self.change_minor, "balance_minor": self.balance_minor,
            "status": int(self.status), "events": [e.to_json() for e in self.events],
        }).encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, replayed: bool = True) -> MovementResult:
        d = json.loads(data)
        return cls(d["key"], d["sequence"], d["account_id"], d["wallet"], d["amount_minor"],
                   d["balance_minor"], Status(d["status"]), [Event.from_json(e) for e in d["events"]],
                   replayed)


def table_bytes(table: pa.Table, *, compression: str | None = None) -> bytes:
    """Arrow IPC stream bytes; `compression` ("zstd", "lz4") for what the ledger keeps."""
    sink = pa.BufferOutputStream()
    options = ipc.IpcWriteOptions(compression=compression)
    with ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_table_bytes(data: bytes) -> pa.Table:
    """A table from Arrow IPC stream or file bytes, without a copy."""
    buffer = pa.py_buffer(data)
    if data[:6] == b"ARROW1":
        return ipc.open_file(buffer).read_all()
    return ipc.open_stream(buffer).read_all()


def pack_parts(*parts: bytes) -> bytes:
    head = struct.pack(f"<I{len(parts)}Q", len(parts), *(len(p) for p in parts))
    return head + b"".join(parts)


def unpack_parts(data: bytes) -> list[bytes]:
    (count,) = struct.unpack_from("<I", data)
    sizes = struct.unpack_from(f"<{count}Q", data, 4)
    offset = 4 + 8 * count
    parts = []
    for size in sizes:
        parts.append(bytes(data[offset:offset + size]))
        offset += size
    return parts
