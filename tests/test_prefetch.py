"""The reader thread of rate(): order kept, errors where they happened,
at most `depth` items ahead, stopped when the consumer stops."""

from __future__ import annotations

import threading
import time

import pytest

from rating.readings.prefetch import prefetched


def test_items_come_in_order_and_an_error_comes_where_it_happened():
    def items():
        yield from range(5)
        raise ValueError("bad batch 6")

    got = []
    with pytest.raises(ValueError, match="bad batch 6"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_the_reader_stays_at_most_depth_ahead_and_stops_with_the_consumer():
    made = []

    def items():
        for i in range(1000):
            made.append(i)
            yield i

    stream = prefetched(items(), depth=2)
    assert next(stream) == 0
    time.sleep(0.3)
    assert len(made) <= 4  # the one taken, two queued, one waiting to be queued
    stream.close()
    assert not any(t.name == "rating-reader" and t.is_alive() for t in threading.enumerate())
    assert len(made) <= 4


def test_stages_nest_and_stop_together():
    def stage(items):
        for item in prefetched(items):
            yield item * 2

    stream = prefetched(stage(iter(range(1000))))
    assert [next(stream) for _ in range(3)] == [0, 2, 4]
    stream.close()
    assert not any(t.name == "rating-reader" and t.is_alive() for t in threading.enumerate())
