"""Every statement a writer puts in a file, each parser reads back as the same Statement."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bench.statement_files import camt053, csv_text, mt940
from rating.payments import (
    Counterparty,
    CsvLayout,
    Entry,
    EntryPart,
    References,
    Statement,
    StatementIdentity,
    parse_statements,
)
from rating.payments.camt053 import VERSIONS

START = date(2026, 3, 30)
words = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 &<>'/.-]{0,18}[A-Za-z0-9]", fullmatch=True).map(
    lambda s: " ".join(s.split()))
maybe = st.none() | words
amounts = st.integers(-10**12, 10**12).filter(bool)


@st.composite
def camt_entry(draw, index: int) -> Entry:
    day = START + timedelta(days=draw(st.integers(0, 40)))
    amount = draw(amounts)
    counterparty = draw(st.none() | st.builds(Counterparty, words, maybe))
    refs = References(draw(maybe), draw(maybe), draw(maybe), draw(maybe), draw(maybe))
    parts: tuple[EntryPart, ...] = ()
    if draw(st.booleans()):  # a batch booking of 2-4 payments
        shares = draw(st.lists(st.integers(1, 10**6), min_size=2, max_size=4))
        sign = 1 if amount > 0 else -1
        amount = sign * sum(shares)
        parts = tuple(EntryPart(sign * s, References(draw(maybe), draw(maybe), draw(maybe), draw(maybe),
                                                      draw(maybe)),
                                draw(st.none() | st.builds(Counterparty, words, maybe)))
                      for s in shares)
        refs = References(bank_reference=refs.bank_reference, remittance=refs.remittance)
        counterparty = None
    return Entry(index, day, draw(st.none() | st.just(day + timedelta(days=1))), amount, "INR", refs,
                 counterparty, parts, booked=draw(st.booleans()), reversal=draw(st.booleans()))


@st.composite
def camt_statements(draw) -> list[Statement]:
    count = draw(st.integers(1, 3))
    opening = draw(st.integers(-10**9, 10**9))
    out = []
    for n in range(count):
        entries = [draw(camt_entry(i)) for i in range(1, draw(st.integers(0, 6)) + 1)]
        closing = opening + sum(e.amount_minor for e in entries if e.booked)
        out.append(Statement("camt.053", StatementIdentity("IN55HDFC0000123", f"S-{n}", str(100 + n)),
                             "INR", opening, closing, START, START + timedelta(days=40), tuple(entries),
                             (100 + n,)))
        opening = closing
    return out


@given(statements=camt_statements(), version=st.sampled_from(VERSIONS))
def test_camt053_reads_back_what_was_written(statements, version):
    assert parse_statements(camt053(statements, version=version), file="s.xml") == statements


mt_refs = st.from_regex(r"[A-Z0-9][A-Z0-9-]{0,15}", fullmatch=True).filter(lambda r: r != "NONREF")
mt_text = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ,.-]{0,58}[A-Za-z0-9]", fullmatch=True).map(
    lambda s: " ".join(s.split()))


@st.composite
def mt940_statements(draw) -> list[Statement]:
    opening = draw(st.integers(-10**9, 10**9))
    out = []
    for n in range(draw(st.integers(1, 3))):
        entries = []
        for i in range(1, draw(st.integers(0, 6)) + 1):
            value = START + timedelta(days=draw(st.integers(0, 300)))
            refs = References(end_to_end_id=draw(st.none() | mt_refs),
                              bank_reference=draw(st.none() | mt_refs), remittance=draw(st.none() | mt_text))
            entries.append(Entry(i, value + timedelta(days=draw(st.integers(0, 3))), value,
                                 draw(st.integers(-10**11, 10**11).filter(bool)), "INR", refs,
                                 reversal=draw(st.booleans())))
        closing = opening + sum(e.amount_minor for e in entries)
        out.append(Statement("mt940", StatementIdentity("NL91ABNA0417164300", f"STMT{n}", f"{7 + n}/1"),
                             "INR", opening, closing, START, START + timedelta(days=300), tuple(entries),
                             (7 + n, 1)))
        opening = closing
    return out


@given(statements=mt940_statements())
def test_mt940_reads_back_what_was_written(statements):
    assert parse_statements(mt940(statements).encode(), file="s.sta") == statements


csv_layouts = st.sampled_from([
    CsvLayout(account="IN55HDFC0000123", currency="INR", date="Date", amount="Amount", balance="Balance",
              reference="UTR", narration="Narration"),
    CsvLayout(account="IN55HDFC0000123", currency="INR", date="Txn Date", debit="Withdrawal",
              credit="Deposit", balance="Balance", reference="Ref No", narration="Description",
              date_format="%d/%m/%Y", thousands_separator=",", newest_first=True),
    CsvLayout(account="IN55HDFC0000123", currency="INR", date="Datum", amount="Betrag", balance="Saldo",
              narration="Text", date_format="%d.%m.%Y", decimal_separator=",", thousands_separator=".",
              delimiter=";"),
])


@given(layout=csv_layouts, opening=st.integers(-10**9, 10**9),
       lines=st.lists(st.tuples(st.integers(0, 29), amounts, st.none() | mt_refs, st.none() | words),
                      min_size=1, max_size=8))
def test_csv_reads_back_what_was_written(layout, opening, lines):
    lines.sort(key=lambda t: t[0])
    entries = tuple(Entry(i, START + timedelta(days=d), None, a, "INR",
                          References(transaction_id=ref if layout.reference else None,
                                     remittance=text if layout.narration else None))
                    for i, (d, a, ref, text) in enumerate(lines, 1))
    first, last = entries[0].booking_date, entries[-1].booking_date
    statement = Statement("csv", StatementIdentity("IN55HDFC0000123", f"{first}..{last}", None), "INR",
                          opening, opening + sum(e.amount_minor for e in entries), first, last, entries)
    for line_end in ("\n", "\r\n"):
        data = ("\ufeff" + csv_text(statement, layout, line_end=line_end)).encode()
        assert parse_statements(data, file="s.csv", layout=layout) == [statement]
