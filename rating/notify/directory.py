"""Residents' contacts, consent per channel, and staff tags, beside the outbox.

Contacts are checked on entry: email addresses by syntax, phone numbers
parsed and stored as E.164 (`phonenumbers`); a bad one is refused, naming
the field, and nothing is stored. Consent per (resident, channel) is opted
in, opted out or never asked (no row): never asked allows service email
about the resident's own dues only (an SMTP channel, no incentive); SMS,
chat and any incentive need an opt-in. An opt-out cancels the channel's
queued notices in the same transaction: it is honoured at once (a notice
already being sent cannot be recalled). Every change of consent and tag
is a row of the dues ledger's audit log.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from rating.billing.ledger_sql import Tx
from rating.errors import InputError
from rating.notify.outbox import Outbox, invalidate
from rating.notify.tables import now_us

ADDRESS_CHARS_MAX = 254
TAG_CHARS_MAX = 40
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_TAG = re.compile(r"^[a-z][a-z0-9_]*$")


class Consent(StrEnum):
    IN = "in"
    OUT = "out"
    NEVER_ASKED = "never_asked"


def allows(consent: Consent, channel_kind: str, *, incentive: bool = False) -> bool:
    """Whether a notice about the resident's own dues may go by a channel of this kind."""
    if consent is Consent.NEVER_ASKED:
        return channel_kind == "smtp" and not incentive
    return consent is Consent.IN


class Contact(NamedTuple):  # a tuple: a site's plan reads one per resident and channel
    account_id: str
    channel: str
    address: str
    name: str = ""
    language: str = "en"
    time_zone: str = ""  # "" for the site's
    invalid: str = ""  # why the provider said it cannot be reached; "" while valid


def check_address(channel_kind: str, address: str, *, region: str = "IN") -> str:
    """The address as stored (phone numbers in E.164); InputError when it is bad."""
    where = f"{channel_kind} address"
    if not isinstance(address, str) or not address.strip() or len(address) > ADDRESS_CHARS_MAX:
        raise InputError(f"must be 1..{ADDRESS_CHARS_MAX} characters, got {address!r}", where=where)
    address = address.strip()
    if channel_kind == "smtp":
        if not _EMAIL.match(address) or len(address.split("@")[0]) > 64:
            raise InputError(f"not an email address: {address!r}", where=where)
        return address
    try:
        number = phonenumbers.parse(address, region)
    except phonenumbers.NumberParseException as exc:
        raise InputError(f"not a phone number: {address!r} ({exc})", where=where) from None
    if not phonenumbers.is_valid_number(number):
        raise InputError(f"not a valid phone number: {address!r}", where=where)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class Directory:
    def __init__(self, outbox: Outbox):
        self.outbox = outbox
        self.tables = outbox.tables

    async def set_contact(self, site_id: str, contact: Contact, *, channel_kind: str, region: str = "IN",
                          actor: str) -> Contact:
        """Store (replace) a resident's address for a channel, checked; a new address is valid."""
        address = check_address(channel_kind, contact.address, region=region)
        if contact.time_zone:
            try:
                ZoneInfo(contact.time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise InputError(f"unknown time zone {contact.time_zone!r}", where="time_zone") from None
        stored = Contact(contact.account_id, contact.channel, address, contact.name, contact.language,
                         contact.time_zone)
        async with self.tables.writing() as tx:
            await tx.execute(
                "INSERT INTO notify_contacts (site_id, account_id, channel, address, name, language, "
                "time_zone, invalid, updated_us) VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8) "
                "ON CONFLICT (site_id, account_id, channel) DO UPDATE SET address = excluded.address, "
                "name = excluded.name, language = excluded.language, time_zone = excluded.time_zone, "
                "invalid = '', updated_us = excluded.updated_us", site_id, stored.account_id, stored.channel,
                address, stored.name, stored.language, stored.time_zone, now_us())
            await tx.execute("UPDATE notify_staff SET resolved_us = $1 WHERE site_id = $2 "
                             "AND account_id = $3 AND channel = $4 AND resolved_us = 0", now_us(), site_id,
                             stored.account_id, stored.channel)  # a new address settles the staff's task
            await self._audit(tx, site_id, actor, "contact", f"{stored.account_id}/{stored.channel}", address)
        return stored

    async def set_consent(self, site_id: str, account_id: str, channel: str, consent: Consent, *,
                          source: str, actor: str) -> int:
        """Record a resident's answer; an opt-out cancels the channel's queued notices
        in the same transaction. How many it cancelled."""
        at = now_us()
        async with self.tables.writing() as tx:
            await tx.execute(
                "INSERT INTO notify_consent (site_id, account_id, channel, state, source, at_us) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (site_id, account_id, channel) DO UPDATE "
                "SET state = excluded.state, source = excluded.source, at_us = excluded.at_us",
                site_id, account_id, channel, consent.value, source, at)
            await self._audit(tx, site_id, actor, "consent", f"{account_id}/{channel}",
                              f"{consent.value} ({source})")
            if consent is not Consent.OUT:
                return 0
            return await self.outbox.cancel_queued(tx, site_id, account_id=account_id, channel=channel,
                                                   why=f"opted out ({source})", now_us=at)

    async def bounced(self, site_id: str, channel: str, address: str, status: str, *, actor: str) -> int:
        """A bounce that came back later: the address is invalid (every account with it),
        its queued notices cancelled; how many."""
        async with self.tables.writing() as tx:
            cancelled = await invalidate(tx, site_id, channel, address, f"bounced {status}", now_us())
            await self._audit(tx, site_id, actor, "bounce", f"{channel}/{address}", status)
        return cancelled

    async def tag(self, site_id: str, account_id: str, tag: str, *, actor: str, remove: bool = False) -> None:
        """A staff tag on a resident (or its removal)."""
        if not _TAG.match(tag) or len(tag) > TAG_CHARS_MAX:
            raise InputError(f"a tag is lower_case_words of at most {TAG_CHARS_MAX} characters, got {tag!r}",
                             where="tag")
        async with self.tables.writing() as tx:
            if remove:
                await tx.execute("DELETE FROM notify_tags WHERE site_id = $1 AND account_id = $2 "
                                 "AND tag = $3", site_id, account_id, tag)
            else:
                await tx.execute("INSERT INTO notify_tags (site_id, account_id, tag, actor, at_us) VALUES "
                                 "($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING", site_id, account_id, tag,
                                 actor, now_us())
            await self._audit(tx, site_id, actor, "untag" if remove else "tag", account_id, tag)

    async def contacts(self, site_id: str) -> dict[str, dict[str, Contact]]:
        """Per account, its contact per channel."""
        async with self.tables.reading() as tx:
            found = await tx.fetch("SELECT account_id, channel, address, name, language, time_zone, invalid "
                                   "FROM notify_contacts WHERE site_id = $1", site_id)
        contacts: dict[str, dict[str, Contact]] = {}
        for row in found:
            contacts.setdefault(row[0], {})[row[1]] = Contact(*row)
        return contacts

    async def accounts_at(self, site_id: str, channel: str, address: str) -> list[str]:
        """The accounts whose contact on the channel is this address."""
        async with self.tables.reading() as tx:
            found = await tx.fetch("SELECT account_id FROM notify_contacts WHERE site_id = $1 "
                                   "AND channel = $2 AND address = $3 ORDER BY account_id", site_id, channel,
                                   address)
        return [r[0] for r in found]

    async def consents(self, site_id: str) -> dict[tuple[str, str], Consent]:
        """(account, channel) -> its answer; a pair absent was never asked."""
        async with self.tables.reading() as tx:
            found = await tx.fetch("SELECT account_id, channel, state FROM notify_consent WHERE site_id = $1",
                                   site_id)
        return {(a, c): Consent(s) for a, c, s in found}

    async def staff_tags(self, site_id: str) -> dict[str, frozenset[str]]:
        async with self.tables.reading() as tx:
            found = await tx.fetch("SELECT account_id, tag FROM notify_tags WHERE site_id = $1", site_id)
        tags: dict[str, set[str]] = {}
        for account, tag in found:
            tags.setdefault(account, set()).add(tag)
        return {a: frozenset(t) for a, t in tags.items()}

    async def _audit(self, tx: Tx, site_id: str, actor: str, action: str, subject: str, detail: str) -> None:
        # the dues ledger's audit log; no money moved, so no operation (seq 0)
        await self.outbox.ledger._audit(tx, site_id, actor, action, subject, detail, 0)
