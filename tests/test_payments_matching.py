"""The matcher: each rule by example, and its two promises as properties — it never matches
a line to an item whose reference and amount disagree, and it always finds a unique exact
match."""

from __future__ import annotations

from datetime import date

from hypothesis import assume, given
from hypothesis import strategies as st

from rating.payments import (
    Entry,
    EntryPart,
    OpenItem,
    References,
    Statement,
    StatementIdentity,
    reconcile,
)
from rating.payments.matching import (
    AMOUNT_MISMATCH,
    BY_BATCH,
    BY_PARTS,
    BY_REFERENCE,
    BY_REFERENCES,
    BY_UNIT,
    CLAIMED_TWICE,
    PART_UNMATCHED,
    SETTLED_ITEM,
    SEVERAL_CANDIDATES,
    UNIT_MISMATCH,
)

D = date(2026, 4, 10)
BILL_7 = OpenItem("bill-7", "B26-0007", 250_000, "A-101", D)
BILL_8 = OpenItem("bill-8", "B26-0008", 180_000, "A-102", D)
PAID_9 = OpenItem("bill-9", "B26-0009", 99_000, "A-103", D, settled=True)
GATEWAY = [OpenItem(f"pay-{k}", f"pay_{k}", a, f"B-{k}", D, batch="SETL-42")
           for k, a in enumerate((10_000, 25_000, 40_000))]
ITEMS = [BILL_7, BILL_8, PAID_9, *GATEWAY]


def line(amount: int, remittance: str = "", **refs: str) -> Entry:
    return Entry(1, D, D, amount, "INR", References(remittance=remittance or None, **refs))


def run(entries: list[Entry], items: list[OpenItem] = ITEMS):
    entries = [Entry(i, e.booking_date, e.value_date, e.amount_minor, e.currency, e.references,
                     e.counterparty, e.parts, e.booked) for i, e in enumerate(entries, 1)]
    opening = 0
    statement = Statement("camt.053", StatementIdentity("ACC", "S", "1"), "INR", opening,
                          opening + sum(e.amount_minor for e in entries if e.booked), D, D, tuple(entries))
    return reconcile([statement], items)


def only_match(result):
    assert not result.review and not result.unmatched_credits and not result.unmatched_debits
    (match,) = result.matched
    return match


def only_review(result):
    assert not result.matched and not result.unmatched_credits
    (review,) = result.review
    return review


def test_a_reference_anywhere_in_the_line_with_the_amount_matches():
    for entry in (line(250_000, end_to_end_id="B26-0007"), line(250_000, "maint. apr (b26-0007)"),
                  line(250_000, creditor_reference="B26-0007"), line(250_000, "A-101 B26-0007")):
        match = only_match(run([entry]))
        assert match.items == (BILL_7,) and match.basis == BY_REFERENCE


def test_a_gateway_settlement_splits_into_its_known_payments():
    match = only_match(run([line(75_000, "RAZORPAY SETTLEMENT SETL-42")]))
    assert match.items == tuple(GATEWAY) and match.basis == BY_BATCH


def test_two_bills_paid_by_one_transfer_split_by_their_references():
    match = only_match(run([line(430_000, "B26-0007 B26-0008")]))
    assert set(match.items) == {BILL_7, BILL_8} and match.basis == BY_REFERENCES


def test_a_batch_booked_entry_is_matched_part_by_part():
    entry = Entry(1, D, D, 430_000, "INR", References(bank_reference="BATCH-1"), None,
                  (EntryPart(250_000, References(end_to_end_id="B26-0007")),
                   EntryPart(180_000, References(end_to_end_id="B26-0008"))))
    match = only_match(run([entry]))
    assert match.items == (BILL_7, BILL_8) and match.basis == BY_PARTS
    wrong = Entry(1, D, D, 430_000, "INR", References(), None,
                  (EntryPart(250_000, References(end_to_end_id="B26-0007")),
                   EntryPart(180_000, References(end_to_end_id="UNKNOWN"))))
    review = only_review(run([wrong]))
    assert review.reason == PART_UNMATCHED and review.candidates == (BILL_7,)


def test_a_line_naming_only_its_unit_matches_that_units_one_open_item_of_the_amount():
    match = only_match(run([line(250_000, "flat A-101 april")]))
    assert match.items == (BILL_7,) and match.basis == BY_UNIT
    two = [BILL_7, OpenItem("bill-17", "B26-0017", 250_000, "A-101", D)]
    assert only_review(run([line(250_000, "flat A-101")], two)).reason == SEVERAL_CANDIDATES
    assert only_review(run([line(100_000, "flat A-101")])).reason == AMOUNT_MISMATCH
    assert only_review(run([line(250_000, "A-101 A-102")])).reason == SEVERAL_CANDIDATES


def test_another_amount_for_a_named_item_goes_to_review():
    review = only_review(run([line(249_999, "B26-0007")]))
    assert review.reason == AMOUNT_MISMATCH and review.candidates == (BILL_7,)
    assert only_review(run([line(75_001, "SETL-42")])).reason == AMOUNT_MISMATCH


def test_two_named_items_that_are_not_paid_together_go_to_review():
    review = only_review(run([line(250_000, "B26-0007 B26-0008")]))
    assert review.reason == SEVERAL_CANDIDATES and set(review.candidates) == {BILL_7, BILL_8}


def test_a_reference_to_a_settled_item_goes_to_review():
    review = only_review(run([line(99_000, "B26-0009")]))
    assert review.reason == SETTLED_ITEM and review.candidates == (PAID_9,)


def test_an_item_of_another_unit_than_the_line_names_goes_to_review():
    assert only_review(run([line(250_000, "A-102 B26-0007")])).reason == UNIT_MISMATCH


def test_two_lines_claiming_one_item_both_go_to_review():
    result = run([line(250_000, "B26-0007"), line(250_000, end_to_end_id="B26-0007"),
                  line(180_000, "B26-0008")])
    assert [m.items for m in result.matched] == [(BILL_8,)]
    assert [r.reason for r in result.review] == [CLAIMED_TWICE, CLAIMED_TWICE]


def test_lines_that_name_nothing_are_listed_as_unmatched():
    result = run([line(1_000, "GIFT"), line(-5_000, "ELECTRICITY BOARD"), line(250_000)])
    assert [x.entry.amount_minor for x in result.unmatched_credits] == [1_000, 250_000]
    assert [x.entry.amount_minor for x in result.unmatched_debits] == [-5_000]
    assert not result.matched and not result.review


def test_a_debit_matches_an_expected_payout_and_pending_lines_are_left_out():
    refund = OpenItem("refund-3", "RF-0003", -40_000, "A-101", D)
    pending = Entry(2, D, D, 250_000, "INR", References(remittance="B26-0007"), booked=False)
    result = run([line(-40_000, "RF-0003"), pending], [*ITEMS, refund])
    assert [m.items for m in result.matched] == [(refund,)] and not result.unmatched_credits


# -- properties -----------------------------------------------------------------

REFS = ["R1", "R2", "R3"]
UNITS = ["A-1", "A-2", "B-1"]
BATCHES = ["SETL1", "SETL2"]
AMOUNTS = [100, 200, -100]  # few values: lines often agree with items, so every rule is reached
words = st.sampled_from(REFS + UNITS + BATCHES + ["PAYMENT", "APRIL"])


@st.composite
def open_items(draw, *, unique_references: bool = False) -> list[OpenItem]:
    count = draw(st.integers(0, 8))
    refs = draw(st.permutations([f"U{n}" for n in range(count)])) if unique_references else None
    return [OpenItem(f"item-{n}", refs[n] if refs else draw(st.sampled_from(REFS)),
                     draw(st.sampled_from(AMOUNTS)), draw(st.sampled_from(UNITS)), D,
                     settled=draw(st.booleans()), batch=draw(st.none() | st.sampled_from(BATCHES)))
            for n in range(count)]


@st.composite
def entries(draw) -> Entry:
    tokens = draw(st.lists(words, max_size=4))
    amount = draw(st.sampled_from(AMOUNTS + [300, 400]))
    parts: tuple[EntryPart, ...] = ()
    if draw(st.booleans()):
        parts = tuple(EntryPart(a, References(end_to_end_id=draw(st.sampled_from(REFS))))
                      for a in draw(st.lists(st.sampled_from([100, 200, 300]), min_size=2, max_size=3)))
        amount = sum(p.amount_minor or 0 for p in parts)
    return Entry(1, D, D, amount, "INR", References(remittance=" ".join(tokens) or None), None, parts)


def named_by(entry: Entry) -> set[str]:
    return entry.references.tokens().union(*(p.references.tokens() for p in entry.parts))


@given(items=open_items(), lines=st.lists(entries(), max_size=6).flatmap(
    lambda ls: st.permutations(ls + ls[:2])))  # some lines twice: two lines may claim one item
def test_never_matches_an_item_whose_reference_or_amount_disagrees(items, lines):
    result = run(lines, items)
    claimed = [i.item_id for m in result.matched for i in m.items]
    assert len(claimed) == len(set(claimed))  # no item paid twice
    for m in result.matched:
        tokens = named_by(m.line.entry)
        assert sum(i.amount_minor for i in m.items) == m.line.entry.amount_minor
        assert not any(i.settled for i in m.items)
        for item in m.items:
            if m.basis == BY_UNIT:  # the only open item of the amount in the one unit named
                assert item.unit in tokens and not any(i.reference in tokens for i in items)
                assert [i for i in items if i.unit in tokens and not i.settled
                        and i.amount_minor == item.amount_minor] == [item]
            else:
                assert item.reference in tokens or item.batch in tokens
    handled = len(result.matched) + len(result.review) + len(result.unmatched_credits) \
        + len(result.unmatched_debits)
    assert handled == len(lines)  # every line in exactly one list


@given(items=open_items(unique_references=True), others=st.lists(entries(), max_size=5), data=st.data())
def test_a_unique_exact_match_is_always_found(items, others, data):
    open_ones = [i for i in items if not i.settled]
    assume(open_ones)
    target = data.draw(st.sampled_from(open_ones))
    noise = data.draw(st.sampled_from(["", "PAYMENT ", "APRIL "]))
    exact = line(target.amount_minor, f"{noise}{target.reference}")
    # the other lines do not name the target, its unit or its batch (they could claim it too)
    others = [e for e in others if not named_by(e) & {target.reference, target.unit, target.batch}]
    result = run([exact, *others], items)
    assert [m.items for m in result.matched if m.line.entry.index == 1] == [(target,)]
