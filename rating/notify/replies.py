"""Residents' replies through a gateway (STOP, START), as HTTP routes for the
server's listener: `rating.server.app.start(..., web_routes=Replies(...).routes())`.

    POST /replies/<channel>   Authorization: Bearer <the channel's inbound token>
    {"from": "+919812345678", "text": "STOP"}

A stop word opts every account of the site with that number on that channel
out, at once: their queued notices on the channel are cancelled in the same
transaction (a notice being sent cannot be recalled). A start word opts them
in. Any other text changes nothing. Answers: 200 with what was done (also for
a number no account has: the gateway learns nothing about residents), 401 a
bad token, 404 a channel without inbound token, 400 a malformed body or
number, 413 a body over `body_bytes_max`.
"""

from __future__ import annotations

import hmac
import json
import unicodedata
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rating.errors import InputError
from rating.notify.directory import Consent, Directory, check_address

STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "बंद", "退订"})
START_WORDS = frozenset({"start", "unstop", "subscribe", "optin"})
TEXT_CHARS_MAX = 1000


def keyword(text: str) -> Consent | None:
    """What a reply asks: its first word, case and width folded, punctuation dropped."""
    words = unicodedata.normalize("NFKC", text).casefold().split()
    first = "".join(c for c in (words[0] if words else "") if c.isalnum())
    if first in STOP_WORDS or "".join(words) in STOP_WORDS:
        return Consent.OUT
    if first in START_WORDS:
        return Consent.IN
    return None


def _error(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"reason": reason, "message": message}}, status_code=status)


class Replies:
    def __init__(self, directory: Directory, site_id: str, *, tokens: Mapping[str, str], region: str = "IN",
                 body_bytes_max: int = 16_384):
        self.directory, self.site_id, self.region = directory, site_id, region
        self.tokens = {channel: token for channel, token in tokens.items() if token}
        self.body_bytes_max = body_bytes_max

    def routes(self) -> list[Route]:
        return [Route("/replies/{channel}", self.reply, methods=["POST"])]

    async def reply(self, request: Request) -> JSONResponse:
        channel = request.path_params["channel"]
        token = self.tokens.get(channel)
        if token is None:
            return _error(404, "NOT_FOUND", f"no inbound replies on channel {channel!r}")
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return _error(401, "UNAUTHENTICATED", "a bad or missing bearer token")
        body = await request.body()
        if len(body) > self.body_bytes_max:
            return _error(413, "BODY_TOO_LARGE", f"the body is larger than {self.body_bytes_max} bytes")
        try:
            found = json.loads(body)
            sender, text = found["from"], found["text"]
            if not isinstance(text, str) or len(text) > TEXT_CHARS_MAX:
                raise InputError(f"text must be a string of at most {TEXT_CHARS_MAX} characters",
                                 where="text")
            address = check_address("webhook", sender, region=self.region)
        except (ValueError, KeyError, TypeError) as exc:  # InputError is a ValueError
            return _error(400, "BAD_REQUEST", f"a reply is {{\"from\": number, \"text\": string}}: {exc}")
        return JSONResponse(await self._act(channel, address, text))

    async def _act(self, channel: str, address: str, text: str) -> dict:
        wanted = keyword(text)
        if wanted is None:
            return {"action": "none"}
        accounts = await self.directory.accounts_at(self.site_id, channel, address)
        cancelled = 0
        for account in accounts:
            cancelled += await self.directory.set_consent(self.site_id, account, channel, wanted,
                                                          source=f"reply {text.strip()[:20]!r}",
                                                          actor=f"{channel} reply")
        return {"action": "opt_out" if wanted is Consent.OUT else "opt_in", "cancelled": cancelled}
