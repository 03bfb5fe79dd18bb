"""What the gRPC benches share: a served site on its own event loop, the society
arguments, and runs that alternate which side goes first."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from rating.server import app
from rating.server.settings import Settings

Local = TypeVar("Local")
Remote = TypeVar("Remote")


@contextlib.contextmanager
def served(site: Path, data: Path) -> Iterator[Any]:
    """A `rating serve` of `site` on a free port, its loop on a thread of its own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    settings = Settings(port=0, site=str(site), data_dir=str(data), log_format="text", log_level="error",
                        rating_process=0).check()
    running = asyncio.run_coroutine_threadsafe(app.start(settings), loop).result(300)
    try:
        yield running
    finally:
        asyncio.run_coroutine_threadsafe(running.stop(1), loop).result(120)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


def society_parser(doc: str | None, *, towers: int, floors: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--towers", type=int, default=towers)
    parser.add_argument("--floors", type=int, default=floors)
    parser.add_argument("--flats", type=int, default=10, help="flats per floor")
    parser.add_argument("--repeat", type=int, default=3)
    return parser


def alternating(repeat: int, local: Callable[[int], Local],
                remote: Callable[[int], Remote]) -> list[tuple[Local, Remote]]:
    """`repeat` pairs of (local(n), remote(n)); which goes first alternates, since a
    warm file cache favours the second."""
    rows = []
    for n in range(repeat):
        if n % 2:
            remote_result = remote(n)
        local_result = local(n)
        if not n % 2:
            remote_result = remote(n)
        rows.append((local_result, remote_result))
    return rows
