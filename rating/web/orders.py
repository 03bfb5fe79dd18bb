"""Payment orders: what a payment link for a bill is made from, settled later by the webhook.

    POST /v1/orders   {"bill": "B/26-27/000007", "key": "link-B7-1", "amount_minor": 250000}
    ->  201 {"order_id": "ord_...", "unit": "A-101", "bill": "B/26-27/000007",
             "amount_minor": 250000, "currency": "INR", "reference": "B/26-27/000007"}
    GET  /v1/orders/{order_id}

`amount_minor` defaults to what the bill still owes. The order id is made
from the site and the caller's `key`, so creating it again with the same
key returns the same order (200), and the same key for another bill or
amount is refused (409). The gateway's payment for the order carries
`order_id` back in its webhook, which then names the unit and the bill.
Calls carry `Authorization: Bearer <token>` (one of the server's tokens)
when the server has tokens.
"""

from __future__ import annotations

import hashlib
import json
import time

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rating.billing.ledger import DuesLedger
from rating.billing.numbering import DocType
from rating.web.app import BearerTokens, HttpError, read_body
from rating.web.events import AMOUNT_MINOR_MAX
from rating.web.store import Order, WebStore

ORDER_BODY_BYTES_MAX = 4096
KEY_CHARS_MAX = 128


class Orders:
    def __init__(self, *, ledger: DuesLedger, store: WebStore, site_id: str, currency: str,
                 tokens: BearerTokens) -> None:
        self.ledger, self.store, self.site_id, self.currency = ledger, store, site_id, currency
        self._authorize = tokens.check

    def routes(self) -> list[Route]:
        return [Route("/v1/orders", self.post, methods=["POST"]),
                Route("/v1/orders/{order_id}", self.get, methods=["GET"])]

    async def post(self, request: Request) -> JSONResponse:
        self._authorize(request)
        doc = _object(await read_body(request, ORDER_BODY_BYTES_MAX))
        bill, key = _text(doc, "bill"), _text(doc, "key")
        amount = doc.get("amount_minor")
        if amount is not None and (type(amount) is not int or not 0 < amount <= AMOUNT_MINOR_MAX):
            raise HttpError(400, f"amount_minor must be a whole number 1..{AMOUNT_MINOR_MAX}",
                            reason="BAD_VALUE", field="amount_minor")
        order = await self.create(bill, key=key, amount_minor=amount)
        stored = await self.store.add_order(order)
        if (stored.account_id, stored.bill, stored.amount_minor) != (order.account_id, order.bill,
                                                                      order.amount_minor):
            raise HttpError(409, f"key {key!r} made order {stored.order_id} for bill {stored.bill} of "
                            f"{stored.amount_minor}; nothing was written", reason="IDEMPOTENCY_CONFLICT",
                            order_id=stored.order_id)
        return JSONResponse(stored.to_json(), status_code=201 if stored == order else 200)

    async def create(self, bill: str, *, key: str, amount_minor: int | None) -> Order:
        """The order for `bill` under `key` (not yet stored); refused for an unknown or paid bill."""
        document = await self.ledger.document(self.site_id, bill)
        if document is None or document.doc_type is not DocType.BILL:
            raise HttpError(404, f"no bill {bill!r} in site {self.site_id!r}", reason="UNKNOWN_BILL",
                            field="bill")
        items = (await self.ledger.open_items(self.site_id)).get(document.account_id, [])
        owed = sum(i.amount_minor for i in items if i.bill_ref == bill)
        if amount_minor is None:
            if owed <= 0:
                raise HttpError(409, f"bill {bill} owes nothing; give amount_minor to take an advance",
                                reason="BILL_SETTLED", field="bill")
            amount_minor = owed
        digest = hashlib.sha256(f"{self.site_id}\0{key}".encode()).hexdigest()
        return Order(f"ord_{digest[:24]}", self.site_id, key, document.account_id, bill, amount_minor,
                     self.currency, bill, time.time_ns() // 1000)

    async def get(self, request: Request) -> JSONResponse:
        self._authorize(request)
        order = await self.store.order(request.path_params["order_id"])
        if order is None or order.site_id != self.site_id:
            raise HttpError(404, "no such order", reason="NOT_FOUND", field="order_id")
        return JSONResponse(order.to_json())


def _object(body: bytes) -> dict:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise HttpError(400, "the body is not JSON", reason="BAD_REQUEST", field="body") from None
    if not isinstance(doc, dict):
        raise HttpError(400, "the body must be a JSON object", reason="BAD_REQUEST", field="body")
    return doc


def _text(doc: dict, name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value or len(value) > KEY_CHARS_MAX or not value.isprintable():
        raise HttpError(400, f"{name} must be a non-empty string of at most {KEY_CHARS_MAX} characters",
                        reason="BAD_VALUE", field=name)
    return value
