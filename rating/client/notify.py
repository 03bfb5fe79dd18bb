"""Python client of the NotifyService (blocking).

```python
from rating.client.notify import NotifyClient

with NotifyClient("127.0.0.1:50051", token="k7-office") as client:
    for n in client.notifications(account_id="A-0101"):
        print(n.id, n.step, n.channel, n.state)
    preview = client.preview(on="2025-06-09")       # writes nothing
    client.cancel(42)                                # a queued one only
    again = client.resend(41)                        # a new row with its own key
    for task in client.staff_tasks():                # contacts a provider refused
        print(task.account_id, task.channel, task.reason)
```

It is a RatingClient with the notify calls added: the same channel, token,
TLS, deadlines and retries. A resend carries a key (given, or made once per
call) so a retry of an unanswered one returns the row it made; a cancel of a
row already cancelled returns it as it is. Failures raise
rating.client.calls.ClientError.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from rating.client.calls import RatingClient
from rating.v1 import notify_pb2 as pb
from rating.v1 import notify_pb2_grpc


class NotifyClient(RatingClient):
    """`site_id`: the site the caller means ("": whichever the server serves)."""

    def __init__(self, target: str, *, site_id: str = "", **kwargs):
        super().__init__(target, **kwargs)
        self.notify = notify_pb2_grpc.NotifyServiceStub(self.channel)
        self.site_id = site_id

    def notifications(self, *, account_id: str = "", state: str = "",
                      page_size: int = 0) -> Iterator[pb.Notification]:
        """Every outbox row (of one account, or state), oldest first, page by page."""
        after = 0
        while True:
            page = self._call(self.notify.ListNotifications, pb.ListNotificationsRequest(
                site_id=self.site_id, account_id=account_id, state=state, after_id=after,
                page_size=page_size))
            yield from page.notifications
            if not page.next_after_id:
                return
            after = page.next_after_id

    def preview(self, *, on: str = "", shown_max: int = 0) -> pb.PreviewNotificationsResponse:
        return self._call(self.notify.PreviewNotifications,
                          pb.PreviewNotificationsRequest(site_id=self.site_id, on=on, shown_max=shown_max))

    def cancel(self, notification_id: int) -> pb.Notification:
        return self._call(self.notify.CancelNotification,
                          pb.CancelNotificationRequest(site_id=self.site_id, id=notification_id))

    def resend(self, notification_id: int, *, resend_key: str = "") -> pb.Notification:
        key = resend_key or uuid.uuid4().hex
        return self._call(self.notify.ResendNotification, pb.ResendNotificationRequest(
            site_id=self.site_id, id=notification_id, resend_key=key), key=key)

    def staff_tasks(self, *, include_resolved: bool = False) -> list[pb.StaffTask]:
        return list(self._call(self.notify.ListStaffTasks, pb.ListStaffTasksRequest(
            site_id=self.site_id, include_resolved=include_resolved)).tasks)
