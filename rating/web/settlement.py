"""A gateway's settlement report: which payments a payout carried, net of the gateway's fees.

The report is a CSV file, one line per payment settled, in this layout
(a header line with these names, in any order; other columns are ignored):

    settlement_id,payment_id,amount,fee,tax,settled_on
    SETL-42,pay_Nx1,300.00,6.00,1.08,2026-04-02
    SETL-42,pay_Nx2,450.00,9.00,1.62,2026-04-02

`amount` is what the resident paid, `fee` and `tax` what the gateway kept
(decimal text in the site's currency, never more decimals than its minor
unit), `settled_on` the payout's date (YYYY-MM-DD). A payout is the sum of
its lines' amounts less their fees and taxes: the bank line it matches.
Importing books, in one transaction, the lines and one fee expense per
payout (its fees and taxes); the same report again changes nothing, and a
payout seen before with other lines is refused whole. Payments the report
names that no webhook captured are listed for staff (the webhook may have
been lost): they are booked all the same.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass

from rating.payments.errors import StatementError
from rating.payments.matching import OpenItem
from rating.payments.money import to_minor

COLUMNS = ("settlement_id", "payment_id", "amount", "fee", "tax", "settled_on")
REPORT_BYTES_MAX = 64 * 1024 * 1024
ROWS_MAX = 1_000_000
ID_CHARS_MAX = 128


class SettlementError(StatementError):
    """A settlement report that cannot be read as it is, or conflicts with one booked before."""

    reason = "BAD_SETTLEMENT"


@dataclass(frozen=True)
class SettlementLine:
    gateway: str
    settlement_id: str
    payment_id: str
    amount_minor: int
    fee_minor: int
    tax_minor: int
    settled_on: dt.date

    @property
    def net_minor(self) -> int:
        return self.amount_minor - self.fee_minor - self.tax_minor


@dataclass(frozen=True)
class Payout:
    """One payout of the report: its lines and what reached the bank."""

    gateway: str
    settlement_id: str
    settled_on: dt.date
    lines: tuple[SettlementLine, ...]

    @property
    def net_minor(self) -> int:
        return sum(line.net_minor for line in self.lines)

    @property
    def fee_minor(self) -> int:
        return sum(line.fee_minor for line in self.lines)

    @property
    def tax_minor(self) -> int:
        return sum(line.tax_minor for line in self.lines)

    def open_item(self) -> OpenItem:
        """What the bank statement's credit for this payout is matched against (rating.payments)."""
        return OpenItem(f"payout:{self.gateway}:{self.settlement_id}", self.settlement_id, self.net_minor, "")


@dataclass(frozen=True)
class SettlementImport:
    payouts: tuple[Payout, ...]
    new: int  # payouts booked by this import
    known: int  # payouts booked before (the same lines)
    uncaptured: tuple[str, ...]  # payment ids no webhook captured

    def to_json(self) -> dict:
        return {"new": self.new, "known": self.known, "uncaptured": list(self.uncaptured),
                "payouts": [{"settlement_id": p.settlement_id, "settled_on": p.settled_on.isoformat(),
                             "payments": len(p.lines), "net_minor": p.net_minor, "fee_minor": p.fee_minor,
                             "tax_minor": p.tax_minor} for p in self.payouts]}


def read_settlement(data: bytes, *, gateway: str, currency: str, file: str) -> tuple[Payout, ...]:
    """The report's payouts, checked; SettlementError naming file, row and column otherwise."""
    if len(data) > REPORT_BYTES_MAX:
        raise SettlementError(f"larger than {REPORT_BYTES_MAX} bytes", file=file, reason="LIMIT_EXCEEDED")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SettlementError(f"not UTF-8 text (byte {exc.start})", file=file) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise SettlementError(f"the header lacks {', '.join(missing)} (it needs {', '.join(COLUMNS)})",
                              file=file, row=1)
    lines: dict[str, list[SettlementLine]] = defaultdict(list)
    seen: dict[str, int] = {}
    for row_number, row in enumerate(reader, start=2):
        if row_number > ROWS_MAX + 1:
            raise SettlementError(f"more than {ROWS_MAX} lines", file=file, reason="LIMIT_EXCEEDED")
        line = _line(row, gateway, currency, file=file, row=row_number)
        if line.payment_id in seen:
            raise SettlementError(f"payment {line.payment_id} is also on row {seen[line.payment_id]}",
                                  file=file, row=row_number, column="payment_id")
        seen[line.payment_id] = row_number
        first = lines[line.settlement_id][0] if lines[line.settlement_id] else None
        if first is not None and first.settled_on != line.settled_on:
            raise SettlementError(f"settlement {line.settlement_id} is dated {first.settled_on} above",
                                  file=file, row=row_number, column="settled_on")
        lines[line.settlement_id].append(line)
    if not lines:
        raise SettlementError("no settlement lines", file=file)
    return tuple(Payout(gateway, sid, group[0].settled_on, tuple(group)) for sid, group in lines.items())


def _line(cells: dict, gateway: str, currency: str, *, file: str, row: int) -> SettlementLine:
    if None in cells or any(v is None for v in cells.values()):
        raise SettlementError("the row has another number of cells than the header", file=file, row=row)
    ids = {}
    for name in ("settlement_id", "payment_id"):
        value = cells[name].strip()
        if not value or len(value) > ID_CHARS_MAX or not value.isprintable():
            raise SettlementError(f"{name} {value[:40]!r} is not an id", file=file, row=row, column=name)
        ids[name] = value
    amounts = [to_minor(cells[name].strip(), currency, file=file, row=row, column=name)
               for name in ("amount", "fee", "tax")]
    if amounts[0] <= 0 or amounts[1] < 0 or amounts[2] < 0:
        raise SettlementError("amount must be positive, fee and tax not negative", file=file, row=row)
    if amounts[1] + amounts[2] > amounts[0]:
        raise SettlementError("fee and tax exceed the amount", file=file, row=row, column="fee")
    try:
        settled_on = dt.date.fromisoformat(cells["settled_on"].strip())
    except ValueError:
        raise SettlementError(f"settled_on {cells['settled_on'][:20]!r} is not a YYYY-MM-DD date", file=file,
                              row=row, column="settled_on") from None
    amount, fee, tax = amounts
    return SettlementLine(gateway, ids["settlement_id"], ids["payment_id"], amount, fee, tax, settled_on)


def classify(payouts: tuple[Payout, ...], booked: dict[str, tuple]) -> list[Payout]:
    """The payouts not booked yet. `booked` maps each payment id of the report, and
    each payment of its payouts, booked before to (settlement_id, amount, fee, tax,
    settled_on). A payout booked before must have the same lines exactly."""
    new = []
    for payout in payouts:
        mine = {line.payment_id: (payout.settlement_id, line.amount_minor, line.fee_minor, line.tax_minor,
                                  line.settled_on) for line in payout.lines}
        before = {pid: row for pid, row in booked.items() if pid in mine or row[0] == payout.settlement_id}
        if not before:
            new.append(payout)
        elif before != mine:
            changed = sorted(pid for pid in mine.keys() | before.keys() if mine.get(pid) != before.get(pid))
            raise SettlementError(f"settlement {payout.settlement_id} (or its payments) was booked before "
                                  f"with other lines: payments {', '.join(changed[:5])}; nothing was booked",
                                  reason="SETTLEMENT_CONFLICT", settlement=payout.settlement_id)
    return new


LINE_COLUMNS = ("gateway", "settlement_id", "payment_id", "amount_minor", "fee_minor", "tax_minor",
                "settled_on", "imported_us")
FEE_COLUMNS = ("gateway", "settlement_id", "fee_minor", "tax_minor", "booked_on", "imported_us")


def line_rows(payouts: list[Payout], imported_us: int) -> list[tuple]:
    return [(p.gateway, p.settlement_id, line.payment_id, line.amount_minor, line.fee_minor, line.tax_minor,
             p.settled_on, imported_us) for p in payouts for line in p.lines]


def fee_rows(payouts: list[Payout], imported_us: int) -> list[tuple]:
    """One expense entry per payout: the gateway's fees and taxes, booked on its date."""
    return [(p.gateway, p.settlement_id, p.fee_minor, p.tax_minor, p.settled_on, imported_us)
            for p in payouts]


async def import_settlement(store, data: bytes, *, gateway: str, currency: str,
                            file: str) -> SettlementImport:
    """Read the report and book what is new of it (see the module text)."""
    payouts = read_settlement(data, gateway=gateway, currency=currency, file=file)
    new, known = await store.book_payouts(payouts)
    payment_ids = [line.payment_id for p in payouts for line in p.lines]
    captured = await store.captured_payment_ids(gateway, payment_ids)
    return SettlementImport(payouts, len(new), known, tuple(p for p in payment_ids if p not in captured))
