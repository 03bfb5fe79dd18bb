"""Decoding ahead of rating: a reader thread keeps a few batches ready.

pyarrow decodes (Parquet, CSV, IPC) without holding the GIL, and so does
the consumption kernel, so a file's next batches are read on one core while
the current one is rated on the other. The queue holds at most `depth`
batches: memory stays bounded whatever the file size. An error in the
reader reaches the consumer where that batch would have been; a consumer
that stops early stops the reader.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
DEPTH_DEFAULT = 2
_POLL_S = 0.1
_DONE = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterator[T], depth: int = DEPTH_DEFAULT) -> Iterator[T]:
    """`items` as they come, produced by a thread up to `depth` ahead."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's own clean-up (an inner stage's thread) runs now
        put(_DONE)

    thread = threading.Thread(target=produce, name="rating-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()
