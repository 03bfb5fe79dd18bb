"""An HTTP webhook channel for SMS and chat gateways.

The gateway is sent a registered template's id and its variables, not free
text: India's DLT rules for SMS and WhatsApp business messages accept only
templates registered beforehand. One POST per message, JSON:

    {"to": "+919812345678", "template_id": "1107160000000000001",
     "template": "reminder", "language": "en", "variables": {"name": "...", ...}}

with the header `Idempotency-Key` (the outbox row's key, the same on every
attempt). Answers: 2xx sent (the provider's id read from the JSON field `id`,
if any); 408, 429, 5xx, a timeout or a refused connection: retry later;
401 and 403 (our credentials): retry later, so messages wait while staff
fix them; 400, 404, 410 and 422: the address is bad; any other 4xx: refused.
Connections are kept alive, one per worker thread.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import urllib.parse
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from rating.notify.channel import Channel, Message
from rating.notify.outbox import Answer, Outcome

BAD_ADDRESS_STATUSES = frozenset({400, 404, 410, 422})
RETRY_STATUSES = frozenset({401, 403, 408, 425, 429})


def answer_of(status: int, body: bytes) -> Answer:
    """What an HTTP status (and body) means for the outbox row."""
    detail = f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
    if 200 <= status < 300:
        try:
            found = json.loads(body or b"{}")
        except ValueError:
            found = {}
        ref = found.get("id", "") if isinstance(found, dict) else ""
        return Answer(Outcome.SENT, str(ref), f"HTTP {status}")
    if status >= 500 or status in RETRY_STATUSES:
        return Answer(Outcome.RETRY, "", detail)
    if status in BAD_ADDRESS_STATUSES:
        return Answer(Outcome.BAD_ADDRESS, "", detail)
    return Answer(Outcome.REFUSED, "", detail)


class WebhookChannel(Channel):
    def __init__(self, url: str, *, name: str = "sms", template_ids: Mapping[str, str] | None = None,
                 headers: Mapping[str, str] | None = None, timeout_s: float = 10.0, workers: int = 8):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook url must be http(s)://host/..., got {url!r}")
        self.name, self.url, self.parts, self.host = name, url, parts, parts.hostname
        self.template_ids = dict(template_ids or {})
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"webhook-{name}")

    def body(self, message: Message) -> bytes:
        template_id = self.template_ids.get(f"{message.template}.{message.language}",
                                            self.template_ids.get(message.template, message.template))
        return json.dumps({"to": message.address, "template_id": template_id, "template": message.template,
                           "language": message.language, "variables": dict(message.fields)},
                          ensure_ascii=False, sort_keys=True, default=str).encode()

    async def send(self, message: Message) -> Answer:
        body = self.body(message)
        headers = {**self.headers, "Idempotency-Key": message.idempotency_key}
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._post, body, headers)

    def _post(self, body: bytes, headers: dict[str, str]) -> Answer:
        path = self.parts.path or "/"
        if self.parts.query:
            path += "?" + self.parts.query
        for fresh in (False, True):  # a kept-alive connection the server closed: once more, new
            con = self._connection(fresh)
            try:
                con.request("POST", path, body, headers)
                response = con.getresponse()
                return answer_of(response.status, response.read())
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                con.close()
                if fresh:
                    return Answer(Outcome.RETRY, "", f"connection lost: {exc}")
            except (OSError, http.client.HTTPException) as exc:  # refused, timed out, garbled
                con.close()
                return Answer(Outcome.RETRY, "", f"{type(exc).__name__}: {exc}")
        raise AssertionError("unreachable")

    def _connection(self, fresh: bool) -> http.client.HTTPConnection:
        con = getattr(self._local, "con", None)
        if con is None or fresh:
            kind = http.client.HTTPSConnection if self.parts.scheme == "https" else http.client.HTTPConnection
            con = kind(self.host, self.parts.port, timeout=self.timeout_s)
            self._local.con = con
            self._connections.append(con)
        return con

    async def close(self) -> None:
        self._threads.shutdown(wait=True)
        for con in self._connections:
            con.close()
