"""The planner: which notices each bill's step calls for, to whom, when.

For the site's latest issued cycle, each bill's step is the last one of the
cadence reached today (`d-7` a week before the due date, `d+30` a month
after). A bill is left alone when the account owes less than the site's
minimum (paid, or nearly). For each channel of the step the resident has a
valid contact for and consents to, a notice is made: the template of the
step's stage in the tone of the resident's first matching tag and in their
language, with exactly the fields it uses, due at the site's sending time
(moved out of quiet hours) in the resident's zone. Writing the plan twice
writes nothing new: each (bill, step, channel) has one key.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from rating.billing.ledger_sql import SqlDuesLedger
from rating.billing.money import major
from rating.billing.numbering import DocType
from rating.model.site import ROUNDING_RULES, Site
from rating.notify.directory import Consent, Contact, Directory, allows
from rating.notify.outbox import Notice
from rating.notify.rules import ReminderRules, Step
from rating.notify.tags import histories, owner_tags, years_between
from rating.notify.templates import Template
from rating.notify.timing import send_us

DOCUMENTS_MAX = 10_000_000
_INTEREST_KINDS = ("interest", "late_fee")


@dataclass(frozen=True)
class Bill:
    """What a notice says of a bill."""

    number: str
    account_id: str
    bill_to: str
    due_date: dt.date
    lines: tuple[tuple[str, str, int], ...]  # (head, kind, amount_minor) as on the bill


@dataclass(frozen=True)
class Audience:
    contacts: Mapping[str, Mapping[str, Contact]]
    consents: Mapping[tuple[str, str], Consent]
    tags: Mapping[str, frozenset[str]]
    years: Mapping[str, int]  # whole years since the account's first bill


def money(minor: int, site: Site) -> str:
    whole, _, part = major(abs(minor), site.minor_unit_exponent).partition(".")
    text = f"{int(whole):,}" + (f".{part}" if part else "")
    return f"{site.currency} {'-' if minor < 0 else ''}{text}"


def bill_of(number: str, account_id: str, due_date: dt.date, body: Mapping) -> Bill:
    lines = tuple((line[0], line[1], line[2]) for line in body["lines"])
    return Bill(number, account_id, str(body.get("bill_to", "")), due_date, lines)


def values(bill: Bill, owed_minor: int, contact: Contact, rules: ReminderRules, site: Site, site_id: str,
           today: dt.date, *, years: int, incentive: str) -> dict[str, object]:
    """Every merge tag's value for this bill and resident."""
    late = max(0, (today - bill.due_date).days)
    return {
        "name": contact.name or bill.bill_to, "unit": bill.account_id, "bill_number": bill.number,
        "amount_due": money(owed_minor, site),
        "breakdown": [{"head": head, "amount": money(amount, site)} for head, _, amount in bill.lines],
        "due_date": bill.due_date.isoformat(), "days_late": late,
        "interest_so_far": money(sum(a for _, kind, a in bill.lines if kind in _INTEREST_KINDS), site),
        "payment_link": rules.payment_link.format(site=quote(site_id, safe=""),
                                                  account=quote(bill.account_id, safe=""),
                                                  bill=quote(bill.number, safe="")),
        "language": contact.language or rules.language, "years_as_owner": years, "incentive": incentive,
        "site_name": site.name,
    }


def tone_of(tags: frozenset[str], rules: ReminderRules) -> str:
    return next((tone for tag, tone in rules.tones if tag in tags), "")


@dataclass(frozen=True)
class Planner:
    rules: ReminderRules
    site: Site
    site_id: str

    def notices(self, bill: Bill, owed_minor: int, step: Step, audience: Audience, *, today: dt.date,
                now_us: int, cause: str = "due_step", template_name: str = "") -> list[Notice]:
        """The notices of one bill at one step (none when it owes less than the minimum)."""
        rules = self.rules
        if owed_minor <= 0 or owed_minor < rules.minimum_outstanding_minor:
            return []
        tags = audience.tags.get(bill.account_id, frozenset())
        offered = self._incentive(bill, owed_minor, step, today)
        found = []
        for channel in step.channels:
            contact = audience.contacts.get(bill.account_id, {}).get(channel)
            if contact is None or contact.invalid:
                continue
            consent = audience.consents.get((bill.account_id, channel), Consent.NEVER_ASKED)
            incentive = offered if offered and allows(consent, rules.kind(channel), incentive=True) else ""
            if not allows(consent, rules.kind(channel)):
                continue
            template = self._template(template_name or rules.stages[step.stage], tags, contact)
            if template is None:
                continue
            every = values(bill, owed_minor, contact, rules, self.site, self.site_id, today,
                           years=audience.years.get(bill.account_id, 0), incentive=incentive)
            fields = {k: every[k] for k in sorted(template.fields)}
            day = max(today, bill.due_date + dt.timedelta(days=step.days))
            due_us = send_us(day, rules.send_at, contact.time_zone or rules.time_zone, rules.quiet_hours)
            found.append(Notice(self.site_id, bill.account_id, cause, bill.number, step.name, channel,
                                contact.address, f"{template.name}.{template.language}", fields,
                                max(due_us, now_us) if day == today else due_us, rules.attempts_max))
        return found

    def _template(self, name: str, tags: frozenset[str], contact: Contact) -> Template | None:
        rules = self.rules
        return rules.templates.pick(name, tone_of(tags, rules), contact.language or rules.language,
                                    rules.language)

    def _incentive(self, bill: Bill, owed_minor: int, step: Step, today: dt.date) -> str:
        offer = self.rules.incentive
        if offer is None or -step.days < offer.until_days or today > bill.due_date:
            return ""
        off = (owed_minor * offer.percent / 100).to_integral_value(ROUNDING_RULES[self.site.rounding])
        return f"{offer.percent}% ({money(int(off), self.site)})"


async def audience(ledger: SqlDuesLedger, directory: Directory, site_id: str, today: dt.date,
                   ) -> tuple[Audience, Mapping[str, int]]:
    """Contacts, consent, tags (staff's and the ledger's) and what each account owes."""
    open_items = await ledger.open_items(site_id)
    documents = await ledger.documents(site_id, limit=DOCUMENTS_MAX)
    staff = await directory.staff_tags(site_id)
    allocations = await ledger.allocations(site_id)
    payments = await ledger.payments(site_id, limit=DOCUMENTS_MAX)
    tags, years = dict(staff), {}
    for account, history in histories(documents, open_items, allocations, payments).items():
        years[account] = years_between(min(h.issued_on for h in history), today)
        tags[account] = owner_tags(history, today) | staff.get(account, frozenset())
    owed = {account: sum(i.amount_minor for i in items) for account, items in open_items.items()}
    people = Audience(await directory.contacts(site_id), await directory.consents(site_id), tags, years)
    return people, owed


async def plan(ledger: SqlDuesLedger, directory: Directory, planner: Planner, *, today: dt.date,
               now_us: int) -> list[Notice]:
    """The notices the latest cycle's bills call for today (nothing written)."""
    cycles = await ledger.cycles(planner.site_id)
    if not cycles:
        return []
    bills = await ledger.documents(planner.site_id, cycle_id=cycles[-1].cycle_id, limit=DOCUMENTS_MAX)
    people, owed = await audience(ledger, directory, planner.site_id, today)
    found: list[Notice] = []
    for doc in bills:
        step = planner.rules.step_on((today - doc.due_date).days)
        if doc.doc_type is DocType.BILL and step is not None:
            bill = bill_of(doc.number, doc.account_id, doc.due_date, doc.body)
            found += planner.notices(bill, owed.get(doc.account_id, 0), step, people, today=today,
                                     now_us=now_us)
    return found


def issue_notices(planner: Planner, directory: Directory):
    """The outbox hook (Outbox.on_issue) writing each issued bill's "bill issued"
    notice, in the issue's transaction."""
    step = Step(0, "issued", tuple(planner.rules.channels), label="issued")

    async def notices(tx, batch, docs: list[tuple]) -> list[Notice]:
        people = Audience(await directory.contacts(batch.site_id), await directory.consents(batch.site_id),
                          {}, {})
        today = batch.bill_date
        found: list[Notice] = []
        for doc in docs:  # rating.billing.ledger_rows.DOC_COLUMNS
            body = json.loads(doc[10])
            bill = bill_of(doc[0], doc[5], dt.date.fromisoformat(str(doc[8])), body)
            found += planner.notices(bill, body["total_due_minor"], step, people, today=today, now_us=0,
                                     cause="bill_issued", template_name=planner.rules.on_issue)
        return found
    return notices
