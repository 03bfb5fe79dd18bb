"""Bulk unpaid dues from CSV and XLSX: checked row by row, all-or-nothing,
errors naming file, row and column, a re-import changes nothing."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pytest

from rating.billing.documents import DuesItem, LineKind
from rating.billing.dues_import import import_dues, read_dues
from rating.errors import InputError
from tests.billing_drafts import SITE, run

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]  # postgres_server, make_ledger
UNITS = {"A-101", "A-102", "B-201"}
HEADS = {"maintenance", "water", "parking"}
GOOD_CSV = """\ufeffUnit,Head,Amount,Due_Date,Note
A-101,maintenance,4500.00,2025-03-31,arrears from the old software
A-102,water,125.5,2025-04-15,

B-201,parking,600,2025-04-15,April parking
"""


def read(path):
    return read_dues(path, units=UNITS, heads=HEADS, exponent=2)


def write_xlsx(path, rows):
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_a_csv_of_dues_is_imported_once_and_a_reimport_changes_nothing(make_ledger, tmp_path):
    path = tmp_path / "dues.csv"
    path.write_text(GOOD_CSV, encoding="utf-8")
    dues = read(path)

    async def go(ledger):
        first = await import_dues(ledger, dues, site_id=SITE, actor="clerk")
        counts = await ledger.counts()
        again = await import_dues(ledger, read(path), site_id=SITE, actor="clerk")
        after = await ledger.counts()
        return first, again, counts, after, await ledger.open_items(SITE), await ledger.audit(SITE)

    first, again, counts, after, items, audit = run(make_ledger, go)
    assert first.summary == {"entries": 3, "amount_minor": 450_000 + 12_550 + 60_000}
    assert again.replayed and after == counts and counts["dues_entries"] == 3
    ref = f"IMP-{dues.sha256[:8]}"
    due = dt.date(2025, 3, 31)
    assert items["A-101"] == [DuesItem("maintenance", LineKind.CHARGE, 450_000, due, f"{ref}-2")]
    assert items["B-201"][0].bill_ref == f"{ref}-5"  # the blank row 4 is skipped, row numbers stay the file's
    assert [(a.action, a.actor) for a in audit] == [("import", "clerk")]
    assert "dues.csv: 3 rows" in audit[0].detail


def test_an_xlsx_workbook_with_date_and_number_cells_reads_like_the_csv(tmp_path):
    path = write_xlsx(tmp_path / "dues.xlsx", [
        ["unit", "head", "amount", "due_date", "note"],
        ["A-101", "maintenance", 4500, dt.datetime(2025, 3, 31), "arrears"],
        ["A-102", "water", 125.5, "2025-04-15", None],
    ])
    entries = read(path).entries
    assert [(e.account_id, e.head, e.amount_minor, e.due_date, e.note) for e in entries] == [
        ("A-101", "maintenance", 450_000, dt.date(2025, 3, 31), "arrears"),
        ("A-102", "water", 12_550, dt.date(2025, 4, 15), "")]


@pytest.mark.parametrize(("row", "column", "message"), [
    ("Z-999,maintenance,10,2025-04-01,", "unit", "unknown unit 'Z-999'"),
    (",maintenance,10,2025-04-01,", "unit", "empty"),
    ("A-101,gym,10,2025-04-01,", "head", "unknown head 'gym'"),
    ("A-101,water,10.005,2025-04-01,", "amount", "more decimals"),
    ("A-101,water,ten,2025-04-01,", "amount", "not an amount"),
    ("A-101,water,NaN,2025-04-01,", "amount", "not an amount"),
    ("A-101,water,-5,2025-04-01,", "amount", "more than zero"),
    ("A-101,water,0,2025-04-01,", "amount", "more than zero"),
    ("A-101,water,1e30,2025-04-01,", "amount", "out of range"),
    ("A-101,water,10,31/04/2025,", "due_date", "not a date"),
    ("A-101,water,10,2025-02-30,", "due_date", "not a date"),
])
def test_a_bad_row_names_file_row_and_column_and_nothing_is_imported(tmp_path, row, column, message):
    path = tmp_path / "dues.csv"
    path.write_text(GOOD_CSV + row + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read(path)
    assert caught.value.where == f"{path} row 6 column {column}"
    assert message in caught.value.message and "nothing imported" in caught.value.message
    assert caught.value.details == {"file": str(path), "row": "6", "column": column}


def test_every_bad_row_is_reported_at_once(tmp_path):
    path = tmp_path / "dues.xlsx"
    write_xlsx(path, [["unit", "head", "amount", "due_date"], ["A-101", "gym", 1, "2025-04-01"],
                      ["A-101", "water", True, "2025-04-01"],
                      ["A-101", "water", 1, dt.datetime(2025, 4, 1, 9)]])
    with pytest.raises(InputError) as caught:
        read(path)
    assert caught.value.message.startswith("3 bad rows, nothing imported")
    for where in ("row 2 column head", "row 3 column amount", "row 4 column due_date"):
        assert f"{path} {where}" in caught.value.message


@pytest.mark.parametrize(("name", "content", "message"), [
    ("dues.csv", "", "empty"),
    ("dues.csv", "unit,head,amount\n", "missing column(s) due_date"),
    ("dues.csv", "unit,head,amount,due_date,unit\n", "appears twice"),
    ("dues.csv", "unit,head,amount,due_date,colour\n", "unknown column 'colour'"),
    ("dues.csv", "unit,head,amount,due_date\n", "no rows"),
    ("dues.txt", "unit,head,amount,due_date\n", ".csv or .xlsx"),
    ("dues.xlsx", "not a zip", "not a readable XLSX"),
    ("dues.csv", b"unit,head,amount,due_date\nA-101,water,1,2025-01-01,\xff\n", "UTF-8"),
])
def test_a_malformed_file_is_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError) as caught:
        read(path)
    assert message in caught.value.message and str(path) in caught.value.where
