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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import quote
from zoneinfo import ZoneInfo

from rating.billing.ledger_sql import SqlDuesLedger
from rating.billing.money import major
from rating.model.site import ROUNDING_RULES, Site
from rating.notify.bills import Bill, bill_of_row, bills, open_by_bill
from rating.notify.directory import Consent, Contact, Directory, allows
from rating.notify.outbox import Notice
from rating.notify.rules import ReminderRules, Step
from rating.notify.tags import histories, owner_tags, years_between
from rating.notify.templates import DUES_FIELDS, Template
from rating.notify.timing import send_us

DOCUMENTS_MAX = 10_000_000
_INTEREST_KINDS = ("interest", "late_fee")
_URL_SAFE = re.compile(r"^[A-Za-z0-9._~-]*$")  # what quote() leaves as it is


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


class _About(NamedTuple):
    """What a notice's merge tags are made of."""

    bill: Bill
    owed_minor: int
    contact: Contact
    planner: Planner
    today: dt.date
    years: int
    incentive: str
    paid_minor: int  # a payment notice: what was paid


def _quoted(text: str) -> str:
    return text if _URL_SAFE.match(text) else quote(text, safe="")


def _link(a: _About) -> str:
    link = a.planner.rules.payment_link
    return link.format(site=_quoted(a.planner.site_id), account=_quoted(a.bill.account_id),
                       bill=_quoted(a.bill.number) if "{bill}" in link else "")


# Each merge tag's value, computed only for the templates that use it.
_VALUES: dict[str, Callable[[_About], object]] = {
    "name": lambda a: a.contact.name or a.bill.bill_to,
    "unit": lambda a: a.bill.account_id,
    "bill_number": lambda a: a.bill.number,
    "amount_due": lambda a: a.planner.money(a.owed_minor),
    "breakdown": lambda a: [{"head": head, "amount": a.planner.money(amount)}
                            for head, _, amount in a.bill.lines],
    "due_date": lambda a: a.bill.due_date.isoformat(),
    "days_late": lambda a: max(0, (a.today - a.bill.due_date).days),
    "interest_so_far": lambda a: a.planner.money(sum(n for _, kind, n in a.bill.lines
                                                     if kind in _INTEREST_KINDS)),
    "payment_link": _link,
    "language": lambda a: a.contact.language or a.planner.rules.language,
    "years_as_owner": lambda a: a.years,
    "incentive": lambda a: a.incentive,
    "site_name": lambda a: a.planner.site.name,
    "amount_paid": lambda a: a.planner.money(a.paid_minor),
}
assert set(_VALUES) == DUES_FIELDS


def tone_of(tags: frozenset[str], rules: ReminderRules) -> str:
    return next((tone for tag, tone in rules.tones if tag in tags), "")


@dataclass(frozen=True)
class Planner:
    rules: ReminderRules
    site: Site
    site_id: str
    # looked up once per value: 100,000 flats share a few templates, amounts and links
    _picked: dict = field(default_factory=dict, compare=False, repr=False)
    _money: dict = field(default_factory=dict, compare=False, repr=False)
    _tones: dict = field(default_factory=dict, compare=False, repr=False)

    def notices(self, bill: Bill, owed_minor: int, step: Step, audience: Audience, *, today: dt.date,
                now_us: int, cause: str = "due_step", template_name: str = "",
                paid_minor: int = 0) -> list[Notice]:
        """The notices of one bill at one step (none when it owes less than the
        minimum, but for a payment's receipt)."""
        rules = self.rules
        contacts = audience.contacts.get(bill.account_id)
        owes = owed_minor > 0 and owed_minor >= rules.minimum_outstanding_minor
        if not contacts or not (owes or cause == "payment"):
            return []
        tags = audience.tags.get(bill.account_id, frozenset())
        if cause == "due_step" and not tags.isdisjoint(rules.suppress_tags):
            return []  # autopay or a payment plan covers the bill
        tone = self._tone(tags)
        step_name = step.name
        found = []
        for channel in step.channels:
            contact = contacts.get(channel)
            if contact is None or contact.invalid:
                continue
            consent = audience.consents.get((bill.account_id, channel), Consent.NEVER_ASKED)
            if not allows(consent, rules.kind(channel)):
                continue
            template = self._template(template_name or rules.stages[step.stage], tone, contact)
            if template is None:
                continue
            incentive = self._incentive(bill, owed_minor, step, today) if consent is Consent.IN else ""
            about = _About(bill, owed_minor, contact, self, today, audience.years.get(bill.account_id, 0),
                           incentive, paid_minor)
            fields = {k: _VALUES[k](about) for k in template.ordered_fields}
            day = max(today, bill.due_date + dt.timedelta(days=step.days))
            due_us = send_us(day, rules.send_at, contact.time_zone or rules.time_zone, rules.quiet_hours)
            found.append(Notice(self.site_id, bill.account_id, cause, bill.number, step_name, channel,
                                contact.address, template.stem, fields,
                                max(due_us, now_us) if day == today else due_us, rules.attempts_max))
        return found

    def money(self, minor: int) -> str:
        text = self._money.get(minor)
        if text is None:
            text = self._money[minor] = money(minor, self.site)
        return text

    def _tone(self, tags: frozenset[str]) -> str:
        tone = self._tones.get(tags)
        if tone is None:
            tone = self._tones[tags] = tone_of(tags, self.rules)
        return tone

    def _template(self, name: str, tone: str, contact: Contact) -> Template | None:
        rules = self.rules
        key = (name, tone, contact.language or rules.language)
        if key not in self._picked:
            self._picked[key] = rules.templates.pick(*key, rules.language)
        return self._picked[key]

    def _incentive(self, bill: Bill, owed_minor: int, step: Step, today: dt.date) -> str:
        offer = self.rules.incentive
        if offer is None or -step.days < offer.until_days or today > bill.due_date:
            return ""
        off = (owed_minor * offer.percent / 100).to_integral_value(ROUNDING_RULES[self.site.rounding])
        return f"{offer.percent}% ({self.money(int(off))})"


async def audience(ledger: SqlDuesLedger, directory: Directory, site_id: str, today: dt.date,
                   site_bills: list[Bill]) -> tuple[Audience, Mapping[str, int]]:
    """Contacts, consent, tags (staff's and the ledger's) and what each account owes."""
    sums = await open_by_bill(directory.tables, site_id)
    still = {ref: owed for refs in sums.values() for ref, owed in refs.items()}
    staff = await directory.staff_tags(site_id)
    allocations = await ledger.allocations(site_id)
    payments = await ledger.payments(site_id, limit=DOCUMENTS_MAX)
    tags, years = dict(staff), {}
    for account, history in histories(site_bills, still, allocations, payments).items():
        years[account] = years_between(history[0].issued_on, today)  # bills come in issue order
        tags[account] = owner_tags(history, today) | staff.get(account, frozenset())
    owed = {account: sum(refs.values()) for account, refs in sums.items()}
    people = Audience(await directory.contacts(site_id), await directory.consents(site_id), tags, years)
    return people, owed


async def plan(ledger: SqlDuesLedger, directory: Directory, planner: Planner, *, today: dt.date,
               now_us: int) -> list[Notice]:
    """The notices the latest cycle's bills call for today (nothing written)."""
    cycles = await ledger.cycles(planner.site_id)
    if not cycles:
        return []
    site_bills = await bills(directory.tables, planner.site_id)
    people, owed = await audience(ledger, directory, planner.site_id, today, site_bills)
    latest = cycles[-1].cycle_id
    found: list[Notice] = []
    for bill in site_bills:
        step = planner.rules.step_on((today - bill.due_date).days)
        if bill.cycle_id == latest and step is not None:
            found += planner.notices(bill, owed.get(bill.account_id, 0), step, people, today=today,
                                     now_us=now_us)
    return found


def issue_notices(planner: Planner, directory: Directory):
    """The outbox hook (Outbox.on_issue) writing each issued bill's "bill issued"
    notice, in the issue's transaction."""
    step = Step(0, "issued", tuple(planner.rules.channels), label="issued")

    async def notices(tx, batch, docs: list[tuple]) -> list[Notice]:
        people = Audience(await directory.contacts(batch.site_id), await directory.consents(batch.site_id),
                          {}, {})
        found: list[Notice] = []
        for doc in docs:  # rating.billing.ledger_rows.DOC_COLUMNS
            bill = bill_of_row(doc)
            if bill.account_id in people.contacts:
                found += planner.notices(bill, bill.total_due_minor, step, people, today=batch.bill_date,
                                         now_us=0, cause="bill_issued", template_name=planner.rules.on_issue)
        return found
    return notices


def payment_notices(planner: Planner, directory: Directory):
    """The ledger hook (Outbox.on_payment) writing each new payment's "payment
    received" notice in the payment's transaction: its receipt is the document
    the notice speaks of (`bill_number`), `amount_due` what the account still owes."""
    step = Step(0, "received", tuple(planner.rules.channels), label="received")

    async def notices(tx, site_id: str, results: list) -> list[Notice]:
        people = Audience(await directory.contacts(site_id), await directory.consents(site_id), {}, {})
        today = dt.datetime.now(ZoneInfo(planner.rules.time_zone)).date()
        found: list[Notice] = []
        for result in results:
            paid = result.summary
            account = paid.get("account", "")
            if paid.get("suspense") or account not in people.contacts:
                continue
            owed = await tx.fetch("SELECT COALESCE(SUM(amount_minor), 0) FROM dues_entries "
                                  "WHERE site_id = $1 AND account_id = $2", site_id, account)
            receipt = Bill(paid["receipt"], account, "", today, today, 0, '{"bill_to": "", "lines": []}')
            found += planner.notices(receipt, int(owed[0][0]), step, people, today=today, now_us=0,
                                     cause="payment", template_name=planner.rules.on_payment,
                                     paid_minor=int(paid["amount_minor"]))
        return found
    return notices
