"""The channel interface: how a notice leaves the building.

A channel gets one rendered `Message` and answers with an `Answer`; it
never raises for what the provider said (a 5xx is `Outcome.RETRY`, a dead
address `Outcome.BAD_ADDRESS`), only for its own bugs, which the relay
records as a retry. It passes `message.idempotency_key` to the provider
wherever the provider takes one (an HTTP header, an email's Message-ID), so
a row sent again after a crash is caught there. A new channel: subclass,
give it a `name` (the value of the outbox's `channel` column), register it
with the relay (`Relay(outbox, {channel.name: channel}, ...)`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from rating.notify.outbox import Answer


@dataclass(frozen=True)
class Message:
    """A notice ready to send: the outbox row's address, template and fields,
    and the text rendered from them (for a channel that sends text)."""

    address: str
    template: str
    fields: Mapping[str, object]
    idempotency_key: str
    subject: str = ""
    text: str = ""
    language: str = "en"


class Channel(ABC):
    name: str = ""

    @abstractmethod
    async def send(self, message: Message) -> Answer:
        """Hand the message to the provider; what it answered."""

    async def close(self) -> None:  # noqa: B027 - most channels hold nothing to release
        """Release connections (nothing by default)."""
