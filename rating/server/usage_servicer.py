"""UsageService handlers: decode, call rating.usage on the server's prepaid
service, encode. The usage file is `usage.toml` beside the site file, read
at start with the served site's money rules (rating.usage.settings); a
server without one answers FAILED_PRECONDITION."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc

from rating.prepaid import errors
from rating.prepaid.service import PrepaidService
from rating.server.arrow_io import read_ipc, table_bytes
from rating.server.servicers import METHODS, _deadline, movement_message, unary
from rating.server.status import StatusError
from rating.usage.facilities import Use
from rating.usage.passes import load_subscriptions
from rating.usage.service import UsageService
from rating.usage.settings import USAGE_FILE, load_usage_file
from rating.v1 import usage_pb2 as pb
from rating.v1 import usage_pb2_grpc

PARKING_STAYS_FILE = "parking_stays.arrow"


def usage_service(site_file: str, prepaid: PrepaidService, data_dir: str) -> UsageService | None:
    """The usage service of a served site (None without a usage file beside it); the parking
    stays carried between batches are kept in `data_dir`."""
    path = Path(site_file).parent / USAGE_FILE if site_file else None
    if path is None or not path.exists():
        return None
    settings = load_usage_file(path, site=prepaid.config.site)
    subscriptions = [] if settings.subscriptions_path is None else \
        load_subscriptions(settings.subscriptions_path, settings.passes)
    return UsageService(prepaid, settings, subscriptions, Path(data_dir) / PARKING_STAYS_FILE)


class UsageServicer(usage_pb2_grpc.UsageServiceServicer):
    def __init__(self, usage: UsageService | None):
        self.usage = usage

    def _service(self) -> UsageService:
        if self.usage is None:
            raise StatusError(grpc.StatusCode.FAILED_PRECONDITION,
                              "this server has no usage file (usage.toml beside the site file)",
                              reason="NO_USAGE_FILE")  # status.USAGE_REASONS
        return self.usage

    @unary("Park")
    async def Park(self, request, context):
        usage = self._service()
        method = METHODS.get(request.visitor_method)
        if method is None:
            raise errors.InvalidArgument(f"unknown payment method {request.visitor_method}",
                                         field="visitor_method")
        events = read_ipc(request.events, what="events")
        settled = await usage.park(events, method=method or "cash", where="events")
        rated = settled.rated
        return pb.ParkResponse(events=rated.events, sessions=table_bytes(rated.sessions),
                               anomalies=table_bytes(rated.anomalies),
                               movements=[movement_message(m) for m in settled.movements],
                               covered_by_pass=settled.covered, amount_minor=rated.amount_minor)

    @unary("Use")
    async def Use(self, request, context):
        use = Use(request.idempotency_key, request.account_id, request.facility, request.quantity or "1",
                  request.source or "card", request.reference)
        return movement_message(await self._service().use(use, deadline=_deadline(context)))

    @unary("RenewPasses")
    async def RenewPasses(self, request, context):
        usage = self._service()
        today = usage.prepaid.now().astimezone(usage.settings.site.zone).date()
        try:
            on = dt.date.fromisoformat(request.on) if request.on else today
        except ValueError:
            raise errors.InvalidArgument(f"on must be a date (YYYY-MM-DD), got {request.on!r}",
                                         field="on") from None
        renewals = await usage.renew_passes(on)
        return pb.RenewPassesResponse(renewals=[
            pb.PassRenewal(account_id=r.account_id, first_day=r.first_day.isoformat(), outcome=r.outcome,
                           balance_minor=r.balance_minor, price_minor=r.price_minor, **{"pass": r.product})
            for r in renewals])
