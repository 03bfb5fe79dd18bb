"""NotifyService handlers: the outbox of the server's site, a preview of the
planner's day, cancel and resend, and the staff queue (rating.notify.control).

Roles are the interceptor's (rating.server.roles): staff and admins make
every call; a resident lists their own unit's notices only (the request's
`account_id` must be the token's unit). Who acts comes from `roles.CALLER`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import grpc

from rating.errors import InputError
from rating.notify import control
from rating.notify.directory import Directory
from rating.notify.gate import renderer
from rating.notify.outbox import Outbox, Row
from rating.notify.planner import plan
from rating.notify.site import ReminderSite
from rating.server import roles
from rating.server.servicers import unary
from rating.server.status import StatusError
from rating.v1 import notify_pb2 as pb
from rating.v1 import notify_pb2_grpc

PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 100, 1000
SHOWN_DEFAULT, SHOWN_MAX = 20, 1000
STATES = ("", "queued", "sending", "sent", "failed", "cancelled")


@dataclasses.dataclass
class Reminding:
    """What the handlers work on: the site's reminders on the server's dues ledger."""

    site: ReminderSite
    outbox: Outbox
    directory: Directory
    ledger: object  # the dues ledger (SqlDuesLedger)


def notification(row: Row, subject: str = "", text: str = "") -> pb.Notification:
    return pb.Notification(id=row.outbox_id, key=row.key, account_id=row.account_id, cause=row.cause,
                           ref=row.ref, step=row.step, channel=row.channel, address=row.address,
                           template=row.template, fields_json=json.dumps(row.fields, ensure_ascii=False,
                                                                        sort_keys=True),
                           state=row.state, attempts=row.attempts, not_before_us=row.not_before_us,
                           provider_ref=row.provider_ref, answer=row.answer, subject=subject, text=text)


def _bounded(value: int, default: int, maximum: int, field: str) -> int:
    if value < 0 or value > maximum:
        raise InputError(f"must be 0..{maximum} (0: {default}), got {value}", where=field)
    return value or default


class NotifyServicer(notify_pb2_grpc.NotifyServiceServicer):
    def __init__(self, reminding: Reminding | None):
        self.reminding = reminding

    def _site(self, site_id: str) -> Reminding:
        if self.reminding is None:
            raise StatusError(grpc.StatusCode.FAILED_PRECONDITION, "this server sends no reminders: start it "
                              "with --site SITE.toml and a reminders.toml beside it", reason="NO_REMINDERS")
        if site_id and site_id != self.reminding.site.site_id:
            raise StatusError(grpc.StatusCode.NOT_FOUND, f"this server serves site "
                              f"{self.reminding.site.site_id!r}, not {site_id!r}", reason="UNKNOWN_SITE")
        return self.reminding

    @unary("ListNotifications")
    async def ListNotifications(self, request, context):
        r = self._site(request.site_id)
        size = _bounded(request.page_size, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, "page_size")
        if request.state not in STATES:
            raise InputError(f"must be one of {', '.join(STATES[1:])} (or empty), got {request.state!r}",
                             where="state")
        if request.after_id < 0:
            raise InputError(f"must be >= 0, got {request.after_id}", where="after_id")
        rows = await r.outbox.rows(r.site.site_id, account_id=request.account_id, state=request.state,
                                   after_id=request.after_id, limit=size + 1)
        page = rows[:size]
        return pb.ListNotificationsResponse(notifications=[notification(row) for row in page],
                                            next_after_id=page[-1].outbox_id if len(rows) > size else 0)

    @unary("PreviewNotifications")
    async def PreviewNotifications(self, request, context):
        r = self._site(request.site_id)
        shown = _bounded(request.shown_max, SHOWN_DEFAULT, SHOWN_MAX, "shown_max")
        try:
            day = dt.date.fromisoformat(request.on) if request.on else r.site.today()
        except ValueError:
            raise InputError(f"must be YYYY-MM-DD, got {request.on!r}", where="on") from None
        _, _, planner = await r.site.open(r.ledger)
        notices = await plan(r.ledger, r.directory, planner, today=day, now_us=0)
        render, rows = renderer(r.site.rules), []
        for n in notices[:shown]:
            row = Row(0, n.key, n.site_id, n.account_id, n.cause, n.ref, n.step, n.channel, n.address,
                      n.template, dict(n.fields), 0, n.attempts_max, "planned", n.not_before_us, "", "")
            message = render(row)
            rows.append(notification(row, message.subject, message.text))
        per_channel: dict[str, int] = {}
        for n in notices:
            per_channel[n.channel] = per_channel.get(n.channel, 0) + 1
        return pb.PreviewNotificationsResponse(notifications=rows, total=len(notices),
                                               per_channel=per_channel)

    @unary("CancelNotification")
    async def CancelNotification(self, request, context):
        r = self._site(request.site_id)
        row = await control.cancel(r.outbox, r.site.site_id, request.id,
                                   actor=roles.CALLER.get().name or "admin")
        return notification(row)

    @unary("ResendNotification")
    async def ResendNotification(self, request, context):
        r = self._site(request.site_id)
        row = await control.resend(r.outbox, r.directory, r.site.rules, r.site.site_id, request.id,
                                   resend_key=request.resend_key, actor=roles.CALLER.get().name or "admin")
        return notification(row)

    @unary("ListStaffTasks")
    async def ListStaffTasks(self, request, context):
        r = self._site(request.site_id)
        tasks = await control.staff_tasks(r.outbox, r.site.site_id, open_only=not request.include_resolved)
        return pb.ListStaffTasksResponse(tasks=[
            pb.StaffTask(id=t[0], account_id=t[1], channel=t[2], address=t[3], reason=t[4], at_us=t[5],
                         resolved_us=t[6]) for t in tasks])
