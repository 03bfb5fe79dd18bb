"""Statement identity and re-imports: the same statement again changes nothing, another one
under a known id is refused, and balances must chain onto what was imported before."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bench.statement_files import camt053, mt940
from rating.payments import (
    CsvLayout,
    Entry,
    MemoryStatementRegistry,
    References,
    Statement,
    StatementConflict,
    StatementError,
    StatementIdentity,
    StatementMark,
    admit,
    parse_statements,
)

D = date(2026, 4, 1)


def day_statement(n: int, opening: int, amounts: list[int]) -> Statement:
    day = D + timedelta(days=n)
    entries = tuple(Entry(i, day, day, a, "INR", References(end_to_end_id=f"E{n}-{i}"))
                    for i, a in enumerate(amounts, 1))
    return Statement("camt.053", StatementIdentity("IN55HDFC0000123", f"S-{n}", str(n)), "INR", opening,
                     opening + sum(amounts), day, day, entries, (n,))


def book(registry: MemoryStatementRegistry, statements: list[Statement], file: str = "f.xml"):
    admission = admit(statements, registry, file=file)
    registry.add([StatementMark.of(s) for s in admission.new])
    return admission


def test_a_reimport_is_known_and_changes_nothing():
    registry = MemoryStatementRegistry()
    one = day_statement(1, 1_000, [500, -200])
    assert book(registry, [one]).new == [one]
    (again,) = parse_statements(camt053([one]), file="again.xml")
    admission = book(registry, [again])
    assert admission.new == [] and admission.known == [again]
    assert registry.marks("IN55HDFC0000123") == [StatementMark.of(one)]


def test_the_same_statement_read_from_mt940_has_the_camt_digest():
    one = day_statement(1, 1_000, [500, -200])
    one = Statement("mt940", one.identity, "INR", 1_000, 1_300, D, D, one.entries, (1,))
    (camt,) = parse_statements(camt053([one]), file="a.xml")
    (swift,) = parse_statements(mt940([one]).encode(), file="a.sta")
    assert camt.digest() == swift.digest() and camt.identity == swift.identity


def test_a_known_id_with_other_contents_is_refused():
    registry = MemoryStatementRegistry()
    book(registry, [day_statement(1, 1_000, [500])])
    changed = day_statement(1, 1_000, [501])
    with pytest.raises(StatementConflict) as caught:
        admit([changed], registry, file="reissued.xml")
    assert caught.value.details["file"] == "reissued.xml" and "S-1" in caught.value.details["statement"]


def test_a_new_statement_must_chain_onto_the_ones_before_and_after_it():
    registry = MemoryStatementRegistry()
    one = day_statement(1, 1_000, [500])
    three = day_statement(3, 2_000, [100])
    book(registry, [one, three])
    with pytest.raises(StatementError, match="S-1 #1, imported before"):
        admit([day_statement(2, 1_499, [501])], registry, file="x")  # opening is not S-1's closing
    with pytest.raises(StatementError, match="S-3 #3, imported before"):
        admit([day_statement(2, 1_500, [499])], registry, file="x")  # closing is not S-3's opening
    assert book(registry, [day_statement(2, 1_500, [500])]).new  # fills the gap exactly
    with pytest.raises(StatementError, match="missing"):
        admit([day_statement(5, 2_000, [1])], registry, file="x")  # S-4 (2,100 -> ?) never imported


def test_csv_exports_of_one_account_must_not_share_a_day():
    layout = CsvLayout(account="A1", currency="INR", date="Date", amount="Amount", balance="Balance")
    registry = MemoryStatementRegistry()
    first = parse_statements(b"Date,Amount,Balance\n2026-04-01,1.00,11.00\n2026-04-15,1.00,12.00\n",
                             file="a.csv", layout=layout)
    book(registry, first)
    overlapping = parse_statements(b"Date,Amount,Balance\n2026-04-15,1.00,13.00\n2026-04-30,1.00,14.00\n",
                                   file="b.csv", layout=layout)
    with pytest.raises(StatementError, match="overlap"):
        admit(overlapping, registry, file="b.csv")
    after = parse_statements(b"Date,Amount,Balance\n2026-04-16,1.00,13.00\n", file="c.csv", layout=layout)
    assert book(registry, after).new == after
