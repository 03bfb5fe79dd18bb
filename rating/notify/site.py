"""A site's reminders on a dues ledger, as the CLI and the server both wire them:
the site's reminders.toml (beside its site file), the notices a bill issue and a
new payment write in their own transaction, the relay with the site's channels
and gate, and the STOP/START reply routes.

An inbound token of a channel (for its replies) comes, like its other secrets
(rating.notify.connect), from the environment: `RATING_<NAME>_INBOUND_TOKEN`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

from rating.errors import InputError


class ReminderSite:
    """The site's billing and reminder rules, and the notify objects on a ledger."""

    def __init__(self, site_file: str | Path):
        from rating.billing.inputs import load_site_billing
        from rating.notify.rules import load_reminders, reminders_path

        self.society = load_site_billing(site_file)
        self.site = self.society.config.site
        self.site_id = self.society.site_id
        self.rules = load_reminders(reminders_path(site_file), self.site)

    @classmethod
    def of(cls, site_file: str | Path) -> ReminderSite | None:
        """The site's reminders, or None when it has no reminders.toml."""
        from rating.notify.rules import reminders_path

        return cls(site_file) if reminders_path(site_file).exists() else None

    async def open(self, ledger):
        from rating.notify.directory import Directory
        from rating.notify.outbox import Outbox
        from rating.notify.planner import Planner

        outbox = Outbox(ledger)
        await outbox.open()
        return outbox, Directory(outbox), Planner(self.rules, self.site, self.site_id)

    async def attach(self, ledger):
        """Each bill's "issued" and each new payment's "received" notice (when the
        rules name their templates) is written in the issue's or payment's transaction."""
        from rating.notify.planner import issue_notices, payment_notices

        outbox, directory, planner = await self.open(ledger)
        if self.rules.on_issue:
            outbox.on_issue(issue_notices(planner, directory))
        if self.rules.on_payment:
            outbox.on_payment(payment_notices(planner, directory))
        return outbox, directory

    async def attach_alerts(self, outbox, prepaid_ledger, recovered_seqs: list[int]) -> bool:
        """Prepaid alerts (a [prepaid_alerts] table) written in each settle's transaction
        of the prepaid ledger, and those of operations recovered before this; False when
        the site tells none, or the prepaid ledger is not in the dues ledger's database."""
        from rating.notify.alerts import Alerts, attach, catch_up, same_database

        if not self.rules.alerts or not same_database(prepaid_ledger, outbox.ledger):
            return False
        alerts = Alerts(self.rules, self.site, self.site_id)
        attach(alerts, prepaid_ledger)
        await catch_up(alerts, outbox.tables, recovered_seqs)
        return True

    def relay(self, outbox, env: Mapping[str, str] = os.environ):
        """The relay of the site's rows through its channels and gate (close it with `close`)."""
        from rating.notify.connect import channels_of
        from rating.notify.gate import ReminderGate, renderer
        from rating.notify.relay import Relay

        return Relay(outbox, channels_of(self.rules, env), render=renderer(self.rules), site_id=self.site_id,
                     gate=ReminderGate(outbox, self.rules, self.site_id))

    def replies(self, directory, env: Mapping[str, str] = os.environ):
        """The STOP/START routes of the channels that have an inbound token."""
        from rating.notify.replies import Replies

        tokens = {name: env.get(f"RATING_{name.upper()}_INBOUND_TOKEN", "") for name in self.rules.channels}
        return Replies(directory, self.site_id, tokens=tokens).routes()

    def account(self, account_id: str) -> str:
        """An account of the site's registry (a contact or consent for another is refused)."""
        if account_id not in {unit.account_id for unit in self.society.units()}:
            raise InputError(f"no account {account_id!r} in site {self.site_id!r}", where=account_id,
                             reason="NOT_FOUND")
        return account_id

    def today(self) -> dt.date:
        return dt.datetime.now(ZoneInfo(self.rules.time_zone)).date()

    def kind(self, channel: str | None) -> str:
        if channel is None or channel not in self.rules.channels:
            known = ", ".join(self.rules.channels)
            raise InputError(f"no channel {channel!r} in reminders.toml; known: {known}", where="--channel")
        return self.rules.kind(channel)


async def close(relay) -> None:
    """Close the relay's channels (their connections)."""
    for channel in relay.channels.values():
        await channel.close()
