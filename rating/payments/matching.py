"""Match bank statement lines to open items, conservatively: no match beats a wrong one.

An open item is a payment recorded or a due expected, as plain data: the
reference a payer quotes (a bill number, a gateway payment id), the amount in
minor units, the unit, and whether it is already settled. A line is matched
only when exactly one explanation fits it exactly:

- its references name one item (or one gateway batch) and the amounts agree;
- its references name several items (or batches) and it pays all of them to
  the minor unit (a batch credit split into its known parts); a CAMT entry
  booked as a batch of transactions is matched part by part the same way;
- it names no item but exactly one unit, which has exactly one open item of
  that amount.

Anything else that touches an item goes to review with its reason: an
amount that does not agree, several candidates, a settled item, an item of
another unit than the line names, an item two lines claim. Lines that touch
nothing are listed as unmatched credits and debits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from rating.payments.statement import Entry, Statement, StatementIdentity

# review reasons
AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
SEVERAL_CANDIDATES = "SEVERAL_CANDIDATES"
SETTLED_ITEM = "SETTLED_ITEM"
UNIT_MISMATCH = "UNIT_MISMATCH"
CLAIMED_TWICE = "CLAIMED_TWICE"
PART_UNMATCHED = "PART_UNMATCHED"
# match bases
BY_REFERENCE = "reference"  # one item named, amount equal
BY_REFERENCES = "references"  # several items or batches named, paid together exactly
BY_BATCH = "batch"  # one gateway batch named, its items sum to the line
BY_UNIT = "unit"  # no item named; the one open item of the unit named with that amount
BY_PARTS = "parts"  # a batch-booked entry whose every part matched
CANDIDATES_SHOWN_MAX = 10  # a review shows at most this many items


@dataclass(frozen=True, slots=True)
class OpenItem:
    """A payment recorded or a due expected, as the matcher sees it.

    `amount_minor` is signed like a statement line: > 0 money expected in,
    < 0 money expected out (a refund paid by transfer). `batch` is the
    gateway settlement or payout id the item is paid out in, when known.
    """

    item_id: str
    reference: str
    amount_minor: int
    unit: str
    date: date | None = None
    settled: bool = False
    batch: str | None = None


@dataclass(frozen=True, slots=True)
class Line:
    statement: StatementIdentity
    entry: Entry


@dataclass(frozen=True, slots=True)
class Match:
    line: Line
    items: tuple[OpenItem, ...]  # each paid its whole amount; together the line's amount
    basis: str


@dataclass(frozen=True, slots=True)
class Review:
    line: Line
    reason: str
    candidates: tuple[OpenItem, ...]
    note: str


@dataclass
class Reconciliation:
    matched: list[Match] = field(default_factory=list)
    review: list[Review] = field(default_factory=list)
    unmatched_credits: list[Line] = field(default_factory=list)
    unmatched_debits: list[Line] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Proposal:
    items: tuple[OpenItem, ...]
    basis: str


@dataclass(frozen=True, slots=True)
class _Flag:
    reason: str
    candidates: tuple[OpenItem, ...]
    note: str


class OpenItems:
    """Open items indexed by reference, batch and (unit, amount), built once per run."""

    def __init__(self, items: Iterable[OpenItem]) -> None:
        self.by_reference: dict[str, list[OpenItem]] = defaultdict(list)
        self.by_batch: dict[str, list[OpenItem]] = defaultdict(list)
        self.by_unit_amount: dict[tuple[str, int], list[OpenItem]] = defaultdict(list)
        self.open_by_unit: dict[str, list[OpenItem]] = defaultdict(list)
        for item in items:
            self.by_reference[item.reference.strip().upper()].append(item)
            if item.batch:
                self.by_batch[item.batch.strip().upper()].append(item)
            unit = item.unit.strip().upper()
            if not item.settled:
                self.by_unit_amount[unit, item.amount_minor].append(item)
                self.open_by_unit[unit].append(item)
            else:
                self.open_by_unit.setdefault(unit, [])  # a known unit, even with nothing open

    def explain(self, amount_minor: int, tokens: set[str]) -> _Proposal | _Flag | None:
        """The one exact explanation of a line, a reason to review it, or None."""
        named = _unique(i for t in tokens for i in self.by_reference.get(t, ()))
        batches = [t for t in tokens if t in self.by_batch]
        units = {t for t in tokens if t in self.open_by_unit}
        if not named and not batches:
            return self._by_unit(amount_minor, units)
        groups = [(i,) for i in named] + [tuple(self.by_batch[b]) for b in batches]
        items = _unique(i for g in groups for i in g)
        settled = tuple(i for i in items if i.settled)
        if settled:
            return _Flag(SETTLED_ITEM, settled, "names an item already settled")
        if units and any(i.unit.strip().upper() not in units for i in items):
            return _Flag(UNIT_MISMATCH, items, f"names unit {', '.join(sorted(units))} but an item of "
                                               "another unit")
        total = sum(i.amount_minor for i in items)
        if total == amount_minor:
            basis = BY_REFERENCES if len(groups) > 1 else BY_BATCH if batches else BY_REFERENCE
            return _Proposal(items, basis)
        if len(groups) > 1:
            return _Flag(SEVERAL_CANDIDATES, items, f"names {len(groups)} items or batches, which "
                                                    f"together are {total}, not {amount_minor}")
        return _Flag(AMOUNT_MISMATCH, items, f"amount {amount_minor}, the item is {total}")

    def _by_unit(self, amount_minor: int, units: set[str]) -> _Proposal | _Flag | None:
        if not units:
            return None
        if len(units) > 1:
            candidates = _unique(i for u in sorted(units)
                                 for i in self.by_unit_amount.get((u, amount_minor), ()))
            return _Flag(SEVERAL_CANDIDATES, candidates, f"names units {', '.join(sorted(units))}")
        (unit,) = units
        candidates = tuple(self.by_unit_amount.get((unit, amount_minor), ()))
        if len(candidates) == 1:
            return _Proposal(candidates, BY_UNIT)
        if candidates:
            return _Flag(SEVERAL_CANDIDATES, candidates, f"unit {unit} has {len(candidates)} open items "
                                                         f"of {amount_minor}")
        open_items = tuple(self.open_by_unit[unit])
        if not open_items:
            return None
        return _Flag(AMOUNT_MISMATCH, open_items, f"unit {unit} has no open item of {amount_minor}")


def reconcile(statements: Sequence[Statement], items: Iterable[OpenItem]) -> Reconciliation:
    """Match every booked line of `statements` to `items`; see the module's rules."""
    index = OpenItems(items)
    result = Reconciliation()
    proposals: list[tuple[Line, _Proposal]] = []
    for statement in statements:
        for entry in statement.booked():
            line = Line(statement.identity, entry)
            outcome = _explain_entry(index, entry)
            if isinstance(outcome, _Proposal):
                proposals.append((line, outcome))
            elif isinstance(outcome, _Flag):
                result.review.append(Review(line, outcome.reason, outcome.candidates[:CANDIDATES_SHOWN_MAX],
                                            outcome.note))
            elif entry.is_credit:
                result.unmatched_credits.append(line)
            else:
                result.unmatched_debits.append(line)
    claims: dict[str, int] = defaultdict(int)
    for _, proposal in proposals:
        for item in proposal.items:
            claims[item.item_id] += 1
    for line, proposal in proposals:
        if any(claims[i.item_id] > 1 for i in proposal.items):
            result.review.append(Review(line, CLAIMED_TWICE, proposal.items,
                                        "another line of the import claims the same item"))
        else:
            result.matched.append(Match(line, proposal.items, proposal.basis))
    result.review.sort(key=lambda r: (r.line.statement, r.line.entry.index))
    return result


def _explain_entry(index: OpenItems, entry: Entry) -> _Proposal | _Flag | None:
    """An entry booked as a batch, every part's amount given, is explained part by part."""
    parts = entry.parts
    if len(parts) < 2 or any(p.amount_minor is None for p in parts) \
            or sum(p.amount_minor or 0 for p in parts) != entry.amount_minor:
        tokens = entry.references.tokens().union(*(p.references.tokens() for p in parts))
        return index.explain(entry.amount_minor, tokens)
    outcomes = [index.explain(p.amount_minor or 0, p.references.tokens()) for p in parts]
    if all(o is None for o in outcomes):  # the parts name nothing: the entry as a whole may
        return index.explain(entry.amount_minor, entry.references.tokens())
    matched = [i for o in outcomes if isinstance(o, _Proposal) for i in o.items]
    if all(isinstance(o, _Proposal) for o in outcomes) and len(_unique(matched)) == len(matched):
        return _Proposal(tuple(matched), BY_PARTS)
    flagged = [i for o in outcomes if isinstance(o, _Flag) for i in o.candidates]
    problems = [f"part {n}: {o.note if o else 'names no item'}"
                for n, o in enumerate(outcomes, 1) if not isinstance(o, _Proposal)]
    return _Flag(PART_UNMATCHED, _unique(matched + flagged),
                 "; ".join(problems) or "two parts name the same item")


def _unique(items: Iterable[OpenItem]) -> tuple[OpenItem, ...]:
    """Items once each, in first-seen order."""
    seen: dict[str, OpenItem] = {}
    for item in items:
        seen.setdefault(item.item_id, item)
    return tuple(seen.values())

