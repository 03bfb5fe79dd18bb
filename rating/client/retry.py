"""Which failed calls to retry, and when: the client's side of docs/durability.md
("Which errors mean what").

A call that ends DEADLINE_EXCEEDED, CANCELLED, UNKNOWN or INTERNAL, or
UNAVAILABLE without the server's `committed: "false"` (a broken connection,
a server killed mid-call; `committed: "true"`: applied later), may already
be committed: its outcome is unknown. Sent again with the same batch id or
idempotency key it is applied at most once, so the client retries these
until its overall timeout: each attempt's deadline starts at
`attempt_timeout_s` and doubles (never past what is left), and the pauses
between attempts grow exponentially from BACKOFF_S to BACKOFF_MAX_S with
full jitter (a random fraction of each, so that clients that failed
together do not retry together). Every other status means the call was not
applied, and is final.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import grpc

S = grpc.StatusCode
UNKNOWN_OUTCOME = frozenset({S.DEADLINE_EXCEEDED, S.CANCELLED, S.UNKNOWN, S.INTERNAL, S.UNAVAILABLE})
BACKOFF_S = 0.05  # the first pause's ceiling
BACKOFF_MAX_S = 2.0
ATTEMPT_TIMEOUT_MIN_S = 0.001


def outcome_unknown(code: grpc.StatusCode, metadata: dict[str, str]) -> bool:
    """True when the failed call may have been applied (retry it with the same key)."""
    if code == S.UNAVAILABLE:
        return metadata.get("committed") != "false"
    return code in UNKNOWN_OUTCOME


class Attempts:
    """The deadlines of a call's attempts and the pauses between them, within `timeout_s`."""

    def __init__(self, timeout_s: float, attempt_timeout_s: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic, rand: Callable[[], float] = random.random):
        self.clock, self.rand = clock, rand
        self.started = clock()
        self.give_up_at = self.started + timeout_s
        self.attempt_timeout_s = timeout_s if attempt_timeout_s is None else attempt_timeout_s
        self.made = 0  # attempts so far
        self.pauses = 0

    def timeout_s(self) -> float:
        """The deadline of the next attempt (and counts it)."""
        self.made += 1
        left = max(self.give_up_at - self.clock(), ATTEMPT_TIMEOUT_MIN_S)
        return min(self.attempt_timeout_s * 2 ** (self.made - 1), left)

    def pause_s(self) -> float | None:
        """How long to wait before the next attempt; None: the time is up, give up."""
        left = self.give_up_at - self.clock()
        if left <= ATTEMPT_TIMEOUT_MIN_S:
            return None
        self.pauses += 1
        ceiling = min(BACKOFF_S * 2 ** (self.pauses - 1), BACKOFF_MAX_S)
        return min(ceiling * self.rand(), left - ATTEMPT_TIMEOUT_MIN_S)

    def elapsed_s(self) -> float:
        return self.clock() - self.started
