"""Payment gateway webhooks: is this call from the gateway, and is it fresh?

The signed string is the call's unix timestamp, a full stop, and the raw
request body, byte for byte:

    signed = f"{t}.".encode() + body
    header  Rating-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, signed)>

The header may carry several `v1=` signatures (a gateway signing with both
secrets while one is being changed); elements may come in any order; other
schemes (`v0=`) are ignored. A call is accepted when some `v1` equals the
HMAC under one of the gateway's current secrets (compared in constant time)
and `t` is within the tolerance of now (300 s by default), either side.
Retries repeat the gateway's event id; `EventLog` answers whether an event
was seen before, so the ledger applies each one once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from rating.errors import ConfigError
from rating.payments.errors import SignatureError

SIGNATURE_HEADER = "Rating-Signature"
TOLERANCE_S = 300
SECRETS_PER_GATEWAY_MAX = 2  # the current one and, during a change, the one before
SECRET_BYTES_MIN = 16
HEADER_CHARS_MAX = 1024
BODY_BYTES_MAX = 1024 * 1024

UNKNOWN_GATEWAY = "UNKNOWN_GATEWAY"
MALFORMED_HEADER = "MALFORMED_HEADER"
BAD_SIGNATURE = "BAD_SIGNATURE"
STALE_TIMESTAMP = "STALE_TIMESTAMP"
BODY_TOO_LARGE = "BODY_TOO_LARGE"

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of the signed string `<timestamp>.<body>`."""
    return hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def sign(secrets: Iterable[bytes], timestamp: int, body: bytes) -> str:
    """The header value a gateway sends: `t=<timestamp>,v1=<hex>` for each secret."""
    return ",".join([f"t={timestamp}"] + [f"v1={signature(s, timestamp, body)}" for s in secrets])


@dataclass(frozen=True, slots=True)
class Verified:
    gateway: str
    timestamp: int
    body: bytes


class GatewaySecrets:
    """Each gateway's shared secrets: one, or two while a secret is being changed.

    `rotate` adds the new secret beside the current one (both valid: the
    gateway may sign with either until it switches); `retire` drops the old.
    """

    def __init__(self, secrets: Mapping[str, bytes | Iterable[bytes]] | None = None) -> None:
        self._secrets: dict[str, tuple[bytes, ...]] = {}
        for gateway, value in (secrets or {}).items():
            self._set(gateway, (value,) if isinstance(value, bytes) else tuple(value))

    def _set(self, gateway: str, secrets: tuple[bytes, ...]) -> None:
        if not gateway or not 1 <= len(secrets) <= SECRETS_PER_GATEWAY_MAX:
            raise ConfigError(f"gateway {gateway!r} needs 1 to {SECRETS_PER_GATEWAY_MAX} secrets",
                              field="secrets")
        if any(len(s) < SECRET_BYTES_MIN for s in secrets):
            raise ConfigError(f"gateway {gateway!r}: a secret shorter than {SECRET_BYTES_MIN} bytes",
                              field="secrets")
        self._secrets[gateway] = secrets

    def rotate(self, gateway: str, new_secret: bytes) -> None:
        """Accept `new_secret` beside the current one."""
        current = self.of(gateway)
        if current is None:
            raise ConfigError(f"unknown gateway {gateway!r}", field="gateway")
        self._set(gateway, (new_secret, current[0]))

    def retire(self, gateway: str) -> None:
        """End a change: only the newest secret stays valid."""
        current = self.of(gateway)
        if current is None:
            raise ConfigError(f"unknown gateway {gateway!r}", field="gateway")
        self._set(gateway, current[:1])

    def of(self, gateway: str) -> tuple[bytes, ...] | None:
        return self._secrets.get(gateway)


class WebhookVerifier:
    """Checks a webhook call's signature header against its gateway's secrets."""

    def __init__(self, secrets: GatewaySecrets, *, tolerance_s: int = TOLERANCE_S,
                 body_bytes_max: int = BODY_BYTES_MAX, clock: Callable[[], float] = time.time) -> None:
        if tolerance_s <= 0:
            raise ConfigError("tolerance_s must be positive", field="tolerance_s")
        self.secrets = secrets
        self.tolerance_s = tolerance_s
        self.body_bytes_max = body_bytes_max
        self.clock = clock

    def verify(self, gateway: str, header: str | None, body: bytes) -> Verified:
        """The verified call, or SignatureError with the reason to log."""
        secrets = self.secrets.of(gateway)
        if secrets is None:
            raise SignatureError("no secret for this gateway", reason=UNKNOWN_GATEWAY, gateway=gateway)
        if len(body) > self.body_bytes_max:
            raise SignatureError(f"body larger than {self.body_bytes_max} bytes", reason=BODY_TOO_LARGE,
                                 gateway=gateway)
        timestamp, signatures = parse_header(header, gateway=gateway)
        expected = [signature(s, timestamp, body) for s in secrets]
        # every pair is compared, so the time taken does not say which one matched
        matches = [hmac.compare_digest(e, given) for e in expected for given in signatures]
        if not any(matches):
            raise SignatureError("no v1 signature matches the body under the gateway's secrets",
                                 reason=BAD_SIGNATURE, gateway=gateway, field=SIGNATURE_HEADER)
        age_s = self.clock() - timestamp
        if abs(age_s) > self.tolerance_s:
            raise SignatureError(f"timestamp {timestamp} is {age_s:+.0f} s from now, beyond the "
                                 f"{self.tolerance_s} s tolerance", reason=STALE_TIMESTAMP,
                                 gateway=gateway, field=SIGNATURE_HEADER)
        return Verified(gateway, timestamp, body)


def parse_header(header: str | None, *, gateway: str) -> tuple[int, list[str]]:
    """(t, [v1 signatures]) of a `t=...,v1=...` header; exactly one t, at least one v1."""
    def malformed(why: str) -> SignatureError:
        return SignatureError(f"{SIGNATURE_HEADER} header {why}", reason=MALFORMED_HEADER,
                              gateway=gateway, field=SIGNATURE_HEADER)

    if not header:
        raise malformed("missing")
    if len(header) > HEADER_CHARS_MAX:
        raise malformed(f"longer than {HEADER_CHARS_MAX} characters")
    timestamps, signatures = [], []
    for element in header.split(","):
        key, sep, value = element.strip().partition("=")
        if not sep:
            raise malformed(f"element {element.strip()[:16]!r} is not key=value")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            if not _HEX_SHA256.fullmatch(value):
                raise malformed("has a v1 that is not 64 lowercase hex digits")
            signatures.append(value)
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise malformed("needs exactly one t=<unix seconds>")
    if not signatures:
        raise malformed("has no v1 signature")
    return int(timestamps[0]), signatures


# -- event ids ------------------------------------------------------------------

NEW = "NEW"
DUPLICATE = "DUPLICATE"  # the same event again (a retry): answer as the first time
CONFLICT = "CONFLICT"  # the same event id with another body: refuse, flag for staff


class EventLog(Protocol):
    def claim(self, gateway: str, event_id: str, body: bytes, *, now_s: float) -> str:
        """NEW the first time (gateway, event_id) is seen, DUPLICATE when it repeats with
        the same body, CONFLICT with another. The ledger's log claims in the
        transaction that applies the event, so a crash before commit leaves it NEW."""


class MemoryEventLog:
    """Event ids in a dict, remembered for `retention_s` (gateways retry for up to three days)."""

    def __init__(self, *, retention_s: float = 3 * 24 * 3600) -> None:
        self.retention_s = retention_s
        self._seen: dict[tuple[str, str], tuple[str, float]] = {}

    def claim(self, gateway: str, event_id: str, body: bytes, *, now_s: float) -> str:
        self._forget_before(now_s - self.retention_s)
        digest = hashlib.sha256(body).hexdigest()
        seen = self._seen.get((gateway, event_id))
        if seen is None:
            self._seen[gateway, event_id] = (digest, now_s)
            return NEW
        return DUPLICATE if seen[0] == digest else CONFLICT

    def _forget_before(self, cutoff_s: float) -> None:
        # dicts keep insertion order, and claims arrive in time order: the oldest are first
        while self._seen:
            key, (_, seen_s) = next(iter(self._seen.items()))
            if seen_s >= cutoff_s:
                break
            del self._seen[key]
