"""The plan as people read it (`rating reminders plan`)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from rating.notify.outbox import Notice
from rating.notify.rules import ReminderRules


def plan_text(notices: Sequence[Notice], rules: ReminderRules, day: dt.date, *, shown_max: int) -> str:
    zone = ZoneInfo(rules.time_zone)
    ordered = sorted(notices, key=lambda n: (n.not_before_us, n.account_id, n.channel))
    out = []
    for notice in ordered[:shown_max]:
        at = dt.datetime.fromtimestamp(notice.not_before_us / 1e6, zone).strftime("%Y-%m-%d %H:%M %z")
        out.append(f"{at}  {notice.account_id}  {notice.step}  {notice.channel}  {notice.address}  "
                   f"{notice.template}\n")
        subject, text = rules.templates.by_stem(notice.template).render(notice.fields)
        if subject:
            out.append(f"    Subject: {subject}\n")
        out.extend(f"    {line}\n".rstrip(" ") for line in text.rstrip("\n").split("\n"))
    if len(ordered) > shown_max:
        out.append(f"... {len(ordered) - shown_max} more notices\n")
    channels = Counter(n.channel for n in notices)
    by_channel = ", ".join(f"{name} {count}" for name, count in sorted(channels.items()))
    out.append(f"{len(notices)} notices for {day}" + (f" ({by_channel})" if by_channel else "")
               + "; nothing written or sent\n")
    return "".join(out)
