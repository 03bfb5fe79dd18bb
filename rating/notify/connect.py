"""A site's channels, as its reminders.toml describes them.

Secrets are never in the file: an SMTP password comes from
`RATING_<NAME>_PASSWORD` (with `username` in the file), a webhook's bearer
token from `RATING_<NAME>_TOKEN`, NAME being the channel's name in capitals
(`RATING_SMS_TOKEN`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from rating.notify.channel import Channel
from rating.notify.rules import ReminderRules
from rating.notify.smtp import SmtpChannel
from rating.notify.webhook import WebhookChannel


def channels_of(rules: ReminderRules, env: Mapping[str, str] = os.environ) -> dict[str, Channel]:
    found: dict[str, Channel] = {}
    for name, settings in rules.channels.items():
        secret_key = f"RATING_{name.upper()}"
        if settings["kind"] == "smtp":  # settings checked by rating.notify.rules
            found[name] = SmtpChannel(settings["host"], settings["port"], settings["sender"], name=name,
                                      starttls=settings["starttls"], username=settings["username"],
                                      password=env.get(f"{secret_key}_PASSWORD", ""),
                                      timeout_s=settings["timeout_s"])
        else:
            token = env.get(f"{secret_key}_TOKEN", "")
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            found[name] = WebhookChannel(settings["url"], name=name, timeout_s=settings["timeout_s"],
                                         headers=headers, template_ids=settings["template_ids"])
    return found
