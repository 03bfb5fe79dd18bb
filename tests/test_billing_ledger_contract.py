"""The contract every dues ledger keeps, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest

from rating.billing.documents import BillLine, Cycle, DuesItem, LineKind
from rating.billing.ledger import (
    CycleOverlap,
    DuesConflict,
    DuesPost,
    Entry,
    NoteRequest,
    NotFound,
    SeriesFull,
)
from rating.billing.numbering import DocType, Numbering, numbering_from_mapping
from rating.errors import InputError
from tests.billing_drafts import JUNE, MAY, SITE, batch, draft, run

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]  # postgres_server, make_ledger
NUMBERING = Numbering()


def flats(n: int, cycle: Cycle = MAY, **amounts) -> list:
    return [draft(f"F{i:04d}", cycle, **amounts) for i in range(n)]


def test_issuing_numbers_bills_in_account_order_and_balances_are_the_sums_of_entries(make_ledger):
    bills = list(reversed(flats(3, water=12_345, rounding=-45, arrears=999)))

    async def go(ledger):
        result = await ledger.issue(batch(bills))
        docs, balances = await ledger.documents(SITE), await ledger.balances(SITE)
        return result, docs, balances, await ledger.open_items(SITE)

    result, docs, balances, items = run(make_ledger, go)
    assert [(d.number, d.account_id) for d in docs] == [
        ("B/25-26/000001", "F0000"), ("B/25-26/000002", "F0001"), ("B/25-26/000003", "F0002")]
    assert result.summary == {"site": SITE, "cycle": MAY.cycle_id, "fy": "25-26", "bills": 3,
                              "first": "B/25-26/000001", "last": "B/25-26/000003",
                              "charges_minor": 3 * 262_300, "entries": 9}
    assert not result.replayed
    # arrears are shown on the bill, never posted again
    assert balances[("F0001", "maintenance")] == 250_000
    assert balances[("F0001", "water")] == 12_345 and balances[("F0001", "round_off")] == -45
    assert docs[1].total_minor == 262_300 and docs[1].body["total_due_minor"] == 262_300 + 999
    due, ref = MAY.due_date, "B/25-26/000003"
    assert items["F0002"] == [DuesItem("maintenance", LineKind.CHARGE, 250_000, due, ref),
                              DuesItem("round_off", LineKind.ROUNDING, -45, due, ref),
                              DuesItem("water", LineKind.CHARGE, 12_345, due, ref)]


def test_issuing_again_returns_the_first_result_and_other_drafts_under_the_key_are_refused(make_ledger):
    async def go(ledger):
        first = await ledger.issue(batch(flats(4)))
        counts = await ledger.counts()
        again = await ledger.issue(batch(flats(4)))
        with pytest.raises(DuesConflict) as conflict:
            await ledger.issue(batch(flats(4, maintenance=250_001)))
        return first, again, counts, await ledger.counts(), conflict.value

    first, again, counts, after, conflict = run(make_ledger, go)
    assert again.replayed and again.summary == first.summary and again.seq == first.seq
    assert after == counts
    assert conflict.where == f"issue:{SITE}:{MAY.cycle_id}" and "nothing was written" in conflict.message


def test_two_processes_issuing_one_cycle_at_once_write_it_once(make_ledger):
    async def go():
        ledgers = [make_ledger(), make_ledger()]
        for ledger in ledgers:
            await ledger.open()
        results = await asyncio.gather(*(ledger.issue(batch(flats(50))) for ledger in ledgers))
        counts = await ledgers[0].counts()
        for ledger in ledgers:
            await ledger.close()
        return results, counts

    results, counts = asyncio.run(go())
    assert sorted(r.replayed for r in results) == [False, True]
    assert results[0].summary == results[1].summary
    assert counts["dues_documents"] == 50 and counts["dues_entries"] == 50 and counts["dues_ops"] == 1


def test_a_cycle_overlapping_an_issued_one_is_refused_and_writes_nothing(make_ledger):
    overlapping = Cycle(SITE, dt.date(2025, 5, 15), dt.date(2025, 6, 14), dt.date(2025, 6, 15),
                        dt.date(2025, 7, 1))
    other_site = dataclasses.replace(MAY, site_id="another-site")

    async def go(ledger):
        await ledger.issue(batch(flats(2)))
        counts = await ledger.counts()
        with pytest.raises(CycleOverlap) as refused:
            await ledger.issue(batch(flats(2, overlapping), overlapping))
        after = await ledger.counts()
        elsewhere = await ledger.issue(batch(flats(2, other_site), other_site))
        return refused.value, counts, after, elsewhere

    refused, counts, after, elsewhere = run(make_ledger, go)
    assert refused.where == "cycle 2025-05-15..2025-06-14"
    assert "overlaps the issued cycle 2025-05-01..2025-05-31" in refused.message
    assert after == counts
    assert elsewhere.summary["first"] == "B/25-26/000001"  # each site has its own series


def test_numbers_run_on_across_cycles_and_start_again_with_the_financial_year(make_ledger):
    march = Cycle(SITE, dt.date(2026, 3, 1), dt.date(2026, 3, 31), dt.date(2026, 3, 31), dt.date(2026, 4, 15))
    april = Cycle(SITE, dt.date(2026, 4, 1), dt.date(2026, 4, 30), dt.date(2026, 5, 1), dt.date(2026, 5, 15))

    async def go(ledger):
        return [(await ledger.issue(batch(flats(2, c), c))).summary for c in (MAY, JUNE, march, april)]

    summaries = run(make_ledger, go)
    assert [(s["first"], s["last"]) for s in summaries] == [
        ("B/25-26/000001", "B/25-26/000002"), ("B/25-26/000003", "B/25-26/000004"),
        ("B/25-26/000005", "B/25-26/000006"), ("B/26-27/000001", "B/26-27/000002")]


def test_a_full_series_refuses_the_issue_whole_and_leaves_no_gap(make_ledger):
    small = numbering_from_mapping({"bill": "GM-{fy}-{n:1}", "year_start": "01-01"}, where="numbering")

    async def go(ledger):
        with pytest.raises(SeriesFull) as full:
            await ledger.issue(batch(flats(10), numbering=small))
        counts = await ledger.counts()
        nine = await ledger.issue(batch(flats(9), numbering=small))
        return full.value, counts, nine

    full, counts, nine = run(make_ledger, go)
    assert "9 numbers left" in full.message and full.where == "bill 2025"
    assert counts["dues_documents"] == 0 and counts["dues_entries"] == 0 and counts["dues_ops"] == 0
    assert (nine.summary["first"], nine.summary["last"]) == ("GM-2025-1", "GM-2025-9")


def test_cancelling_a_bill_reverses_it_by_a_numbered_credit_note_and_it_keeps_its_number(make_ledger):
    async def go(ledger):
        await ledger.issue(batch(flats(2, water=5_000, rounding=-30)))
        cancel = dict(on=dt.date(2025, 6, 5), reason="billed twice", actor="committee", numbering=NUMBERING)
        first = await ledger.cancel(SITE, "B/25-26/000002", key="cancel-1", **cancel)
        again = await ledger.cancel(SITE, "B/25-26/000002", key="cancel-1", **cancel)
        with pytest.raises(InputError) as twice:
            await ledger.cancel(SITE, "B/25-26/000002", key="cancel-2", **cancel)
        with pytest.raises(NotFound):
            await ledger.cancel(SITE, "B/25-26/000099", key="cancel-3", **cancel)
        return (first, again, twice.value, await ledger.balances(SITE), await ledger.open_items(SITE),
                await ledger.document(SITE, "B/25-26/000002"), await ledger.document(SITE, "CN/25-26/00001"))

    first, again, twice, balances, items, bill, note = run(make_ledger, go)
    assert first.summary == {"number": "CN/25-26/00001", "total_minor": -254_970,
                             "corrects": "B/25-26/000002"}
    assert again.replayed and again.summary == first.summary
    assert "was cancelled by credit note CN/25-26/00001" in twice.message
    assert {k: v for k, v in balances.items() if k[0] == "F0001"} == {
        ("F0001", "maintenance"): 0, ("F0001", "water"): 0, ("F0001", "round_off"): 0}
    assert "F0001" not in items and "F0000" in items
    assert bill.number == "B/25-26/000002" and bill.total_minor == 254_970  # unchanged
    assert note.doc_type is DocType.CREDIT_NOTE and note.cancels and note.corrects == bill.number
    assert [line[2] for line in note.body["lines"]] == [-250_000, -5_000, 30]


def test_notes_after_issue_are_numbered_and_carried_by_the_next_bill(make_ledger):
    def note(kind, key, amount, corrects=""):
        line = BillLine("water", LineKind.CHARGE, amount, "Meter misread")
        return NoteRequest(key, SITE, kind, "F0000", (line,), dt.date(2025, 6, 10), MAY.due_date,
                           "meter misread", "staff", NUMBERING, corrects)

    async def go(ledger):
        await ledger.issue(batch(flats(2, water=9_000)))
        credit = await ledger.note(note(DocType.CREDIT_NOTE, "n1", 4_000, "B/25-26/000001"))
        debit = await ledger.note(note(DocType.DEBIT_NOTE, "n2", 700))
        with pytest.raises(NotFound):
            await ledger.note(note(DocType.CREDIT_NOTE, "n3", 1, "B/25-26/000777"))
        with pytest.raises(InputError):
            await ledger.note(note(DocType.CREDIT_NOTE, "n4", -5))
        await ledger.issue(batch(flats(2, JUNE), JUNE))
        return (credit, debit, await ledger.carried(SITE, "B/25-26/000003"),
                await ledger.carried(SITE, "B/25-26/000004"), await ledger.open_items(SITE))

    credit, debit, carried, other, items = run(make_ledger, go)
    assert credit.summary["number"] == "CN/25-26/00001" and debit.summary["number"] == "DN/25-26/00001"
    assert carried == ["CN/25-26/00001", "DN/25-26/00001"] and other == []
    water = [i for i in items["F0000"] if i.head == "water"]
    assert water == [DuesItem("water", LineKind.CHARGE, 5_000, MAY.due_date, "B/25-26/000001"),
                     DuesItem("water", LineKind.CHARGE, 700, MAY.due_date, "DN/25-26/00001")]


def test_posted_entries_replay_and_a_changed_payload_is_refused(make_ledger):
    entry = Entry("F0003", "maintenance", "charge", 120_000, dt.date(2025, 3, 31), "DUES-1",
                  "opening arrears")
    post = DuesPost("import:abc", "import", SITE, "clerk", (entry,), "dues.csv sha256 abc, 1 row")

    async def go(ledger):
        first = await ledger.post(post)
        again = await ledger.post(post)
        with pytest.raises(DuesConflict):
            changed = dataclasses.replace(entry, amount_minor=1)
            await ledger.post(dataclasses.replace(post, entries=(changed,)))
        return first, again, await ledger.balances(SITE, "F0003"), await ledger.counts()

    first, again, balances, counts = run(make_ledger, go)
    assert again.replayed and again.seq == first.seq
    assert balances == {("F0003", "maintenance"): 120_000} and counts["dues_entries"] == 1


def test_every_write_names_its_site_and_actor_in_the_audit_and_new_rules_are_audited_once(make_ledger):
    async def go(ledger):
        await ledger.issue(batch(flats(1), rules="[heads.a]\n"))
        await ledger.issue(batch(flats(1, JUNE), JUNE, rules="[heads.a]\n"))
        await ledger.cancel(SITE, "B/25-26/000001", key="c", on=dt.date(2025, 6, 2), reason="",
                            actor="committee", numbering=NUMBERING)
        return await ledger.audit(SITE)

    audit = run(make_ledger, go)
    assert [(a.action, a.subject, a.actor, a.site_id) for a in audit] == [
        ("rules", audit[0].subject, "tester", SITE), ("issue", MAY.cycle_id, "tester", SITE),
        ("issue", JUNE.cycle_id, "tester", SITE), ("cancel", "CN/25-26/00001", "committee", SITE)]
    assert len(audit[0].subject) == 64 and "2025-05-01..2025-05-31" in audit[0].detail


def test_the_money_tables_refuse_updates_and_deletes(make_ledger, tmp_path):
    async def go(ledger):
        await ledger.issue(batch(flats(1)))
        refused = []
        for sql in ("UPDATE dues_entries SET amount_minor = 0", "DELETE FROM dues_documents",
                    "DELETE FROM dues_audit", "UPDATE dues_ops SET kind = 'x'"):
            try:
                async with ledger._writing(SITE) as tx:
                    await tx.execute(sql)
            except Exception as exc:  # sqlite3.IntegrityError, asyncpg.RaiseError
                refused.append("append-only" in str(exc))
        return refused, await ledger.balances(SITE)

    refused, balances = run(make_ledger, go)
    assert refused == [True] * 4
    assert balances == {("F0000", "maintenance"): 250_000}


def test_report_rows_date_each_entry_by_its_document_or_its_payment_and_flag_cancelled_bills(make_ledger):
    from rating.billing.ledger_payment_types import Method, PaymentRequest

    async def go(ledger):
        await ledger.issue(batch(flats(2)))
        await ledger.pay(PaymentRequest("p1", SITE, "F0000", Method.CASH, 100_000, dt.date(2025, 6, 20), "t"))
        await ledger.cancel(SITE, "B/25-26/000002", key="c1", on=dt.date(2025, 6, 3), reason="error",
                            actor="t", numbering=NUMBERING)
        return await ledger.report_rows(SITE), await ledger.balances(SITE)

    found, balances = run(make_ledger, go)
    due, bill_day = MAY.due_date, MAY.bill_date
    assert sorted(found.entries) == [
        ("F0000", "B/25-26/000001", due, 0, bill_day, 250_000),
        ("F0000", "B/25-26/000001", due, 0, dt.date(2025, 6, 20), -100_000),
        ("F0001", "B/25-26/000002", due, 0, bill_day, 250_000),
        ("F0001", "B/25-26/000002", due, 0, dt.date(2025, 6, 3), -250_000)]
    assert sum(e[-1] for e in found.entries) == sum(balances.values())
    assert found.receipts == [("F0000", found.receipts[0][1], "cash", dt.date(2025, 6, 20), 100_000, None)]
    assert [(b[0], b[1], b[5], b[6]) for b in found.bills] == [("B/25-26/000001", "F0000", 250_000, False),
                                                               ("B/25-26/000002", "F0001", 250_000, True)]
    assert sum(c[-1] for c in found.credits) == 0  # the whole payment was allocated
