"""A payment gateway for the webhook tests: it signs events as a gateway does
and posts them over real HTTP (httpx) to a listener on a free loopback port."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import httpx

from rating.payments.webhook import SIGNATURE_HEADER, sign

SECRET = "whsec_test_0123456789abcdef"
NEW_SECRET = "whsec_test_fedcba9876543210"
_ids = itertools.count(1)


def write_secrets(path: Path, secrets: dict[str, list[str]]) -> Path:
    lines = []
    for gateway, values in secrets.items():
        lines += [f"[{gateway}]", "secrets = [" + ", ".join(json.dumps(v) for v in values) + "]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def event(kind: str = "captured", *, amount_minor: int = 50000, unit: str = "F0001",
          purpose: str = "dues", wallet: str = "", payment_id: str | None = None,
          event_id: str | None = None, created: int | None = None, **data: object) -> dict:
    n = next(_ids)
    body = {"payment_id": payment_id or f"pay_{n}", "amount_minor": amount_minor, "currency": "INR",
            "unit": unit, "purpose": purpose, **data}
    if wallet:
        body["wallet"] = wallet
    if kind == "refunded":
        body.setdefault("refund_id", f"rfnd_{n}")
    if kind == "chargeback":
        body.setdefault("dispute_id", f"dsp_{n}")
    return {"id": event_id or f"evt_{n}", "type": f"payment.{kind}",
            "created": int(time.time()) if created is None else created, "data": body}


def body_of(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


class Gateway:
    """Posts signed events to `/webhooks/<name>` of the listener at `base_url`."""

    def __init__(self, base_url: str, name: str = "razorpay", secrets: tuple[str, ...] = (SECRET,)) -> None:
        self.base_url, self.name, self.secrets = base_url, name, secrets

    def headers(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        t = int(time.time()) if timestamp is None else timestamp
        return {SIGNATURE_HEADER: sign([s.encode() for s in self.secrets], t, body),
                "content-type": "application/json"}

    def post(self, doc: dict | bytes, *, timestamp: int | None = None, headers: dict | None = None,
             timeout_s: float = 30.0) -> httpx.Response:
        body = doc if isinstance(doc, bytes) else body_of(doc)
        sent = self.headers(body, timestamp=timestamp) if headers is None else headers
        return httpx.post(f"{self.base_url}/webhooks/{self.name}", content=body, headers=sent,
                          timeout=timeout_s)
