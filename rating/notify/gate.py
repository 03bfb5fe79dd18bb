"""The relay's last look before sending a site's claimed rows (a gate goes
with a relay of one site: `Relay(..., site_id=...)`).

- Paid since planned: a reminder (`due_step`) of an account that now owes
  less than the site's minimum is cancelled. What it owes is the sum of its
  dues entries (the dues ledger's `balances`, for the whole batch in one
  statement), and a payment is entries too: it stops what is queued the
  moment it lands.
- Quiet hours, in the resident's zone: deferred to their end.
- Autopay or a payment plan (a staff tag of `suppress_tags`): reminders cancelled.
- The daily cap: at most `daily_cap` notices per resident in any 24 hours;
  one more is deferred until the oldest of those is 24 hours old.
Deferred rows keep their place and their attempts: nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from rating.notify.bills import owed as owed_by
from rating.notify.channel import Message
from rating.notify.outbox import Claimed, Outbox
from rating.notify.relay import Checked
from rating.notify.rules import ReminderRules
from rating.notify.tables import placeholders
from rating.notify.timing import after_quiet_us

DAY_US = 86_400_000_000


class ReminderGate:
    def __init__(self, outbox: Outbox, rules: ReminderRules, site_id: str):
        self.outbox, self.rules, self.site_id = outbox, rules, site_id

    async def check(self, rows: Sequence[Claimed], now_us: int) -> Checked:
        checked = Checked([])
        mine = list(rows)
        assert all(r.site_id == self.site_id for r in mine)  # the relay claims this site's rows only
        accounts = sorted({r.account_id for r in mine})
        owed = await owed_by(self.outbox.tables, self.site_id, accounts)
        zones = await self._zones(accounts)
        sent = await self.outbox.sent_since(self.site_id, accounts, now_us - DAY_US)
        covered = await self._covered(accounts)
        minimum = max(1, self.rules.minimum_outstanding_minor)
        for row in mine:
            if row.cause == "due_step" and owed[row.account_id] < minimum:
                checked.cancel.append((row, f"paid: owes {owed[row.account_id]}"))
                continue
            if row.cause == "due_step" and row.account_id in covered:
                checked.cancel.append((row, f"covered: {covered[row.account_id]}"))
                continue
            quiet_end = after_quiet_us(now_us, zones.get(row.account_id) or self.rules.time_zone,
                                       self.rules.quiet_hours)
            times = sorted(sent.get(row.account_id, []))
            if quiet_end > now_us:
                checked.defer.append((row, quiet_end, "quiet hours"))
            elif len(times) >= self.rules.daily_cap:
                checked.defer.append((row, times[-self.rules.daily_cap] + DAY_US, "daily cap"))
            else:
                checked.send.append(row)
                sent.setdefault(row.account_id, []).append(now_us)
        return checked

    async def _covered(self, accounts: list[str]) -> dict[str, str]:
        """Accounts with a staff tag that suppresses reminders (autopay, a payment plan)."""
        tags = sorted(self.rules.suppress_tags)
        if not accounts or not tags:
            return {}
        async with self.outbox.tables.reading() as tx:
            found = await tx.fetch("SELECT account_id, tag FROM notify_tags WHERE site_id = $1 "
                                   f"AND tag IN ({placeholders(2, len(tags))}) "
                                   f"AND account_id IN ({placeholders(2 + len(tags), len(accounts))})",
                                   self.site_id, *tags, *accounts)
        return dict(found)

    async def _zones(self, accounts: list[str]) -> dict[str, str]:
        if not accounts:
            return {}
        async with self.outbox.tables.reading() as tx:
            found = await tx.fetch("SELECT account_id, time_zone FROM notify_contacts WHERE site_id = $1 "
                                   f"AND account_id IN ({placeholders(2, len(accounts))}) "
                                   "AND time_zone <> ''", self.site_id, *accounts)
        return dict(found)


def renderer(rules: ReminderRules):
    """The relay's `render`: a stored row's template and fields as a message."""
    def render(row: Claimed) -> Message:
        template = rules.templates.by_stem(row.template)
        subject, text = template.render(row.fields)
        return Message(row.address, template.name, row.fields, row.idempotency_key, subject, text,
                       template.language)
    return render
