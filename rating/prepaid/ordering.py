"""The order of deductions, in one place.

- Rating order: batches are rated one at a time, in the order they come;
  a stream's batches in stream order (`StreamOrder`: each waits until the
  one before it is rated, and is refused if that one was refused).
- Commit chain: batches commit in the order they were rated, each once the
  one before it has committed or failed (`DeductionOrder.committing`).
- Undo: a batch that fails to commit is taken out of the Rater together with
  every batch rated after it (the planner's rollback, under the rating lock);
  those later batches belong to a void generation and fail at their turn, so
  the client resends from the failed one (`DeductionOrder.void`).

Every lock here is released by the code that took it (context managers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from rating.prepaid import errors


@dataclass(frozen=True)
class Place:
    """A batch's place in its stream."""

    after: asyncio.Future | None  # the stream's batch before it: True once rated, False if refused
    rated: asyncio.Future  # this batch: the same, for the batch after it

    async def wait_before(self, batch_id: str) -> None:
        """Wait until the batch before it is rated; refuse this one if that one was refused."""
        if self.after is not None and not await asyncio.shield(self.after):
            raise errors.Unavailable("an earlier batch of this stream was refused: resend from it",
                                     batch_id=batch_id)

    def passed(self, rated: bool) -> None:
        """Let the next batch of the stream go (rated) or refuse it; the first word counts."""
        if not self.rated.done():
            self.rated.set_result(rated)


class StreamOrder:
    """The batches of one stream, in the order they were started."""

    def __init__(self) -> None:
        self._last_rated: asyncio.Future | None = None

    def next_place(self) -> Place:
        place = Place(self._last_rated, asyncio.get_running_loop().create_future())
        self._last_rated = place.rated
        return place


def alone() -> Place:
    """The place of a batch of no stream."""
    return StreamOrder().next_place()


@dataclass(frozen=True)
class Turn:
    """A rated batch's place in the commit chain."""

    generation: int
    previous: asyncio.Future | None  # the batch rated before it: done once committed or failed
    done: asyncio.Future


class DeductionOrder:
    def __init__(self) -> None:
        self._rating = asyncio.Lock()  # rating, and taking the Rater back
        self._generation = 0  # bumped when a commit fails: the batches rated after it are void
        self._tail: asyncio.Future | None = None  # the last rated batch's commit
        self.stale = False  # the Rater may not be the ledger's (reload before the next batch)

    @asynccontextmanager
    async def rating(self) -> AsyncIterator[None]:
        """Held while a batch is rated (and its turn taken)."""
        async with self._rating:
            yield

    def take_turn(self) -> Turn:
        """The next place in the commit chain: after the last batch rated."""
        assert self._rating.locked(), "a turn is taken while rating"
        turn = Turn(self._generation, self._tail, asyncio.get_running_loop().create_future())
        self._tail = turn.done
        return turn

    @asynccontextmanager
    async def committing(self, turn: Turn, batch_id: str) -> AsyncIterator[None]:
        """Wait for the batch before in the chain; refuse a void batch; let the next one go after."""
        try:
            if turn.previous is not None:
                await asyncio.wait([turn.previous])  # commits go in rating order
            if turn.generation != self._generation:
                raise errors.Unavailable("an earlier batch failed to commit and was undone; resend from it",
                                         batch_id=batch_id)
            yield
        finally:
            turn.done.set_result(None)

    @asynccontextmanager
    async def taking_back(self) -> AsyncIterator[None]:
        """Held while the Rater goes back (not while a later batch is rated);
        the batches rated after it are void, and the Rater is reloaded from the
        ledger before the next batch (a lost connection may hide a commit)."""
        async with self._rating:
            try:
                yield
            finally:
                self.void()

    def void(self) -> None:
        """The batches rated so far and not committed fail at their turn."""
        assert self._rating.locked(), "voided while rating is held"
        before = self._generation
        self._generation += 1
        self.stale = True
        assert self._generation == before + 1

    @asynccontextmanager
    async def quiet(self) -> AsyncIterator[None]:
        """No batch rated and not committed, none rated meanwhile (a new configuration)."""
        while True:  # let the rated batches commit (or fail) first; a failing one takes the lock
            tail = self._tail
            if tail is not None:
                await asyncio.wait([tail])
            await self._rating.acquire()
            if self._tail is None or self._tail.done():
                break
            self._rating.release()
        try:
            yield
        finally:
            self._rating.release()
