"""`POST /webhooks/{gateway}`: a gateway's signed event, applied once, answered after the commit.

The path of a call: the body is read up to its limit (413 past it); the
signature header is checked against the gateway's secrets (401, or 400 for
a malformed header, each logged with its reason); the body is read as an
event (400 naming the field); an event id answered before is answered the
same again, and the same id with another body is refused (409); a refusal
after the signature (422: an unknown unit or wallet, another currency) is
not kept, so the gateway's retry is looked at afresh. Then the
money: a top-up credits the prepaid wallet through the prepaid service's
movement path; a dues payment, refund or chargeback goes to the dues ledger
under the idempotency key of the money (`gw:<gateway>:<kind>:<object id>`).
Only once that is committed is the event row written and 200 answered. A
backend that cannot be reached is 503 (the gateway retries), nothing else
changes.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rating.errors import RatingError
from rating.payments.errors import SignatureError
from rating.payments.webhook import (
    BODY_BYTES_MAX,
    MALFORMED_HEADER,
    SIGNATURE_HEADER,
    TOLERANCE_S,
    GatewaySecrets,
    WebhookVerifier,
)
from rating.prepaid import errors as prepaid_errors
from rating.prepaid.ledger.base import LedgerUnavailable
from rating.prepaid.records import Movement
from rating.prepaid.service import PrepaidService
from rating.web.app import HttpError, read_body
from rating.web.events import EventError, GatewayEvent, read_event
from rating.web.payments_port import GatewayPayment, GatewayPayments
from rating.web.store import EventRow, WebStore

log = logging.getLogger("rating.web")
Answer = tuple[int, dict]


class Webhooks:
    """The webhook endpoint of every configured gateway."""

    def __init__(self, *, secrets: Callable[[], GatewaySecrets], payments: GatewayPayments,
                 store: WebStore, prepaid: PrepaidService, body_bytes_max: int = BODY_BYTES_MAX,
                 tolerance_s: int = TOLERANCE_S, clock: Callable[[], float] = time.time) -> None:
        self.secrets, self.payments, self.store, self.prepaid = secrets, payments, store, prepaid
        self.body_bytes_max, self.clock = body_bytes_max, clock
        self.verifier = WebhookVerifier(secrets(), tolerance_s=tolerance_s, body_bytes_max=body_bytes_max,
                                        clock=clock)

    def routes(self) -> list[Route]:
        return [Route("/webhooks/{gateway}", self.receive, methods=["POST"])]

    async def receive(self, request: Request) -> JSONResponse:
        gateway = request.path_params["gateway"]
        body = await read_body(request, self.body_bytes_max)
        self._verify(gateway, request, body)
        try:
            event = read_event(gateway, body)
        except EventError as exc:
            raise HttpError(400, exc.message, reason=exc.reason, **exc.details) from None
        if event is None:
            return JSONResponse({"status": "ignored"})  # a type we do not handle: the gateway may stop
        seen = await self.store.event(gateway, event.event_id)
        if seen is None:
            status, answer = await self._answer(event)
            if status != 200:  # nothing was written: a retry is looked at afresh (a unit added since)
                return JSONResponse({**answer, "event_id": event.event_id}, status_code=status)
            seen = await self.store.add_event(EventRow(gateway, event.event_id, event.kind, event.key,
                                                       event.body_sha256, status, answer, _now_us()))
        elif seen.body_sha256 != event.body_sha256:
            log.warning("webhook event id reused with another body", extra={"fields": {
                "gateway": gateway, "event_id": event.event_id}})
            raise HttpError(409, f"event {event.event_id} was answered before with another body",
                            reason="EVENT_CONFLICT", event_id=event.event_id)
        return JSONResponse({**seen.answer, "event_id": event.event_id}, status_code=seen.status)

    def _verify(self, gateway: str, request: Request, body: bytes) -> None:
        self.verifier.secrets = self.secrets()  # a rotated secrets file takes effect here
        try:
            self.verifier.verify(gateway, request.headers.get(SIGNATURE_HEADER), body)
        except SignatureError as exc:
            client = request.client.host if request.client else ""
            log.warning("webhook refused", extra={"fields": {"gateway": gateway, "reason": exc.reason,
                                                             "client": client}})
            status = 400 if exc.reason == MALFORMED_HEADER else 413 if exc.reason == "BODY_TOO_LARGE" else 401
            raise HttpError(status, exc.message, reason=exc.reason, gateway=gateway) from None

    async def _answer(self, event: GatewayEvent) -> Answer:
        """Apply the event's money; (status, answer) to keep for its retries."""
        site = self.prepaid.config.site
        if event.currency != site.currency:
            return _refusal(422, "CURRENCY_MISMATCH", f"data.currency {event.currency} is not the site's "
                            f"{site.currency}", field="data.currency")
        try:
            if event.purpose == "topup":
                return await self._top_up(event)
            if event.kind == "failed":
                log.info("gateway payment failed", extra={"fields": {
                    "gateway": event.gateway, "payment_id": event.payment_id, "reason": event.reason}})
                return 200, {"status": "failed", "payment_id": event.payment_id}
            outcome = await self.payments.apply_gateway_payment(await self._payment(event))
        except (LedgerUnavailable, prepaid_errors.Unavailable) as exc:
            raise HttpError(503, f"the ledger cannot be reached: {exc}; retry",
                            reason="BACKEND_UNAVAILABLE") from None
        except RatingError as exc:
            return _refusal(422, exc.reason, exc.message, **exc.details)
        if outcome.flags:
            log.warning("gateway payment flagged for staff", extra={"fields": {
                "gateway": event.gateway, "payment_id": event.payment_id, "flags": ",".join(outcome.flags)}})
        return 200, {**outcome.to_json(), "payment_id": event.payment_id}

    async def _payment(self, event: GatewayEvent) -> GatewayPayment:
        site = self.prepaid.config.site
        account, bill, flags = event.unit, event.bill, []
        if event.order_id:
            order = await self.store.order(event.order_id)
            if order is None or order.site_id != site.name:
                flags.append("UNKNOWN_ORDER")
            else:
                account, bill = order.account_id, order.bill
                if order.amount_minor != event.amount_minor:
                    flags.append("ORDER_AMOUNT_MISMATCH")
        if account and account not in self.prepaid.config.registry.accounts:
            flags.append("UNKNOWN_UNIT")
        received_on = dt.datetime.fromtimestamp(event.created_s, ZoneInfo(site.time_zone)).date()
        if not account:  # money for an order nobody knows: kept in suspense under its name
            account = f"unknown-order:{event.order_id}"
        return GatewayPayment(site.name, event.gateway, event.event_id, event.kind, event.payment_id, account,
                              bill, event.order_id, event.amount_minor, received_on, event.reason,
                              f"gateway:{event.gateway}", tuple(flags), event.object_id)

    async def _top_up(self, event: GatewayEvent) -> Answer:
        """A prepaid top-up, or its refund or chargeback, as a movement of the wallet."""
        if event.kind == "failed":
            return 200, {"status": "failed", "payment_id": event.payment_id}
        account = event.unit
        if event.order_id:
            order = await self.store.order(event.order_id)
            account = order.account_id if order is not None else account
        if event.kind == "captured":
            movement = Movement("topup", event.key, account, event.wallet, event.amount_minor,
                                method="online", reference=event.payment_id)
        else:  # money the gateway already paid back: never refused for a low balance
            movement = Movement("adjust", event.key, account, event.wallet, -event.amount_minor,
                                method="online", reason=f"gateway {event.kind} {event.object_id}",
                                reference=event.payment_id)
        try:
            result = await self.prepaid.move(movement)
        except prepaid_errors.Unavailable:
            raise
        except prepaid_errors.PrepaidError as exc:
            return _refusal(422, exc.reason, exc.message, **exc.metadata)
        return 200, {"status": "topped_up" if event.kind == "captured" else "reversed",
                     "payment_id": event.payment_id, "unit": result.account_id, "wallet": result.wallet,
                     "sequence": result.sequence, "balance_minor": result.balance_minor}


def _refusal(status: int, reason: str, message: str, **details: str) -> Answer:
    return status, {"error": {"reason": reason, "message": message, **details}}


def _now_us() -> int:
    return time.time_ns() // 1000
