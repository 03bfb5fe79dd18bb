"""Staff's hand on the outbox: look up, cancel and resend notices, and the staff
queue of contacts a provider refused (the gRPC NotifyService and `rating
reminders` both call these).

- Cancel: a queued notice only. One being sent cannot be recalled, one sent
  or failed is history: both are refused (NotQueued) and nothing changes.
- Resend: a new row under its own key (`<the first key>|resend:<resend key>`),
  to the resident's current address of the channel, within consent; the
  first row's log records it. The same resend key again returns that row:
  a retried call never sends twice. A notice still queued or being sent is
  not resent (it is on its way).
"""

from __future__ import annotations

from rating.billing.ledger import NotFound
from rating.errors import InputError
from rating.notify.directory import Consent, Directory, allows
from rating.notify.outbox import COLUMNS, LOG_COLUMNS, Notice, Outbox, Row
from rating.notify.rules import ReminderRules
from rating.notify.tables import insert_ignore, now_us

RESEND_KEY_CHARS_MAX = 128


class NotQueued(InputError):
    """The notice is not in a state that allows the change; nothing changed."""

    reason = "NOT_QUEUED"


async def row_of(outbox: Outbox, site_id: str, outbox_id: int) -> Row:
    async with outbox.tables.reading() as tx:
        found = await tx.fetch("SELECT note_key FROM notify_outbox WHERE site_id = $1 AND id = $2",
                               site_id, outbox_id)
    if not found:
        raise NotFound(f"no notification #{outbox_id} in site {site_id!r}", where="id")
    return await row_by_key(outbox, site_id, found[0][0])


async def row_by_key(outbox: Outbox, site_id: str, key: str) -> Row:
    rows = await outbox.rows(site_id, key=key, limit=1)
    if not rows:
        raise NotFound(f"no notification {key!r} in site {site_id!r}", where="key")
    return rows[0]


async def cancel(outbox: Outbox, site_id: str, outbox_id: int, *, actor: str) -> Row:
    """Cancel a queued notice (refused, changing nothing, in any other state)."""
    why = f"cancelled by {actor}"
    async with outbox.tables.writing() as tx:
        found = await tx.fetch("UPDATE notify_outbox SET state = 'cancelled', answer = $1, updated_us = $2 "
                               "WHERE site_id = $3 AND id = $4 AND state = 'queued' "
                               "RETURNING account_id, attempts",
                               why, now_us(), site_id, outbox_id)
        if found:
            await tx.insert_many("notify_log", LOG_COLUMNS, [
                (outbox_id, site_id, found[0][0], now_us(), found[0][1], "cancelled", why)])
    row = await row_of(outbox, site_id, outbox_id)
    if not found and row.state != "cancelled":
        raise NotQueued(f"notification #{outbox_id} is {row.state}: only a queued one can be cancelled"
                        + (" (one being sent cannot be recalled)" if row.state == "sending" else ""),
                        where="id")
    return row


async def resend(outbox: Outbox, directory: Directory, rules: ReminderRules, site_id: str, outbox_id: int, *,
                 resend_key: str, actor: str) -> Row:
    """A new row for a notice sent, failed or cancelled before; the same resend key
    returns the row it made."""
    if not resend_key or len(resend_key) > RESEND_KEY_CHARS_MAX or "|" in resend_key:
        raise InputError(f"must be 1..{RESEND_KEY_CHARS_MAX} characters without '|', got {resend_key!r}",
                         where="resend_key")
    first = await row_of(outbox, site_id, outbox_id)
    key = f"{first.key}|resend:{resend_key}"
    if await outbox.rows(site_id, key=key, limit=1):
        return await row_by_key(outbox, site_id, key)  # a retried call: its first result
    if first.state in ("queued", "sending"):
        raise NotQueued(f"notification #{outbox_id} is {first.state}: it is on its way, not resent",
                        where="id")
    address = await _address(directory, rules, first)
    notice = Notice(site_id, first.account_id, first.cause, first.ref, first.step, first.channel, address,
                    first.template, first.fields, now_us(), rules.attempts_max)
    record = (key, *notice.record(now_us())[1:-1], f"resend of #{outbox_id} by {actor}")
    async with outbox.tables.writing() as tx:
        if await insert_ignore(tx, COLUMNS, [record], table="notify_outbox"):
            await tx.insert_many("notify_log", LOG_COLUMNS, [
                (outbox_id, site_id, first.account_id, now_us(), first.attempts, "resent",
                 f"{key} by {actor}")])
    return await row_by_key(outbox, site_id, key)


async def _address(directory: Directory, rules: ReminderRules, row: Row) -> str:
    """The resident's current address of the row's channel, refused when invalid or without consent."""
    contact = (await directory.contacts(row.site_id)).get(row.account_id, {}).get(row.channel)
    if contact is None or contact.invalid:
        why = "has no contact" if contact is None else f"has an invalid contact ({contact.invalid})"
        raise NotQueued(f"{row.account_id} {why} on {row.channel}: set one first", where="id")
    consent = (await directory.consents(row.site_id)).get((row.account_id, row.channel), Consent.NEVER_ASKED)
    if not allows(consent, rules.kind(row.channel)):
        raise NotQueued(f"{row.account_id} has not consented to {row.channel} ({consent})", where="id")
    return contact.address


async def staff_tasks(outbox: Outbox, site_id: str, *, open_only: bool = True,
                      limit: int = 1000) -> list[tuple]:
    """The staff queue: (id, account, channel, address, reason, at_us, resolved_us), oldest first."""
    sql = ("SELECT id, account_id, channel, address, reason, at_us, resolved_us FROM notify_staff "
           "WHERE site_id = $1" + (" AND resolved_us = 0" if open_only else "") + " ORDER BY id LIMIT $2")
    async with outbox.tables.reading() as tx:
        return [tuple(r) for r in await tx.fetch(sql, site_id, limit)]
