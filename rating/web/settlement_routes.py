"""`POST /v1/settlements/{gateway}`: a gateway's settlement report (CSV body), booked once.

    curl -X POST --data-binary @settlement.csv -H "Authorization: Bearer $TOKEN" \\
         http://127.0.0.1:8080/v1/settlements/razorpay
    -> 200 {"new": 1, "known": 0, "uncaptured": [], "payouts": [{"settlement_id": "SETL-42", ...}]}

A report that does not read, or a payout booked before with other lines, is
400 naming the row and column, and nothing is booked (rating.web.settlement).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rating.payments.errors import StatementError
from rating.web.app import BearerTokens, HttpError, read_body
from rating.web.settlement import REPORT_BYTES_MAX, import_settlement
from rating.web.store import WebStore


class Settlements:
    def __init__(self, *, store: WebStore, currency: str, tokens: BearerTokens,
                 body_bytes_max: int = REPORT_BYTES_MAX) -> None:
        self.store, self.currency, self.tokens, self.body_bytes_max = store, currency, tokens, body_bytes_max

    def routes(self) -> list[Route]:
        return [Route("/v1/settlements/{gateway}", self.post, methods=["POST"])]

    async def post(self, request: Request) -> JSONResponse:
        self.tokens.check(request)
        gateway = request.path_params["gateway"]
        data = await read_body(request, self.body_bytes_max)
        name = request.query_params.get("file", f"{gateway} settlement report")
        try:
            result = await import_settlement(self.store, data, gateway=gateway, currency=self.currency,
                                             file=name)
        except StatementError as exc:
            status = 409 if exc.reason == "SETTLEMENT_CONFLICT" else 400
            raise HttpError(status, str(exc), reason=exc.reason, **exc.details) from None
        return JSONResponse(result.to_json())
