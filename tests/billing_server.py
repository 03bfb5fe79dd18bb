"""A served society for the BillingService and roles tests: the demo society
(one tower, 33 flats) without its shared-area groups (the prepaid service
refuses a site with groups), and a real grpc.aio server on a free port,
run on an event loop of its own thread so that tests call it with the
blocking clients and the CLI, as users do."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from rating.cli.demo import generate_demo
from rating.client.calls import ClientError
from rating.server import app
from rating.server.settings import Settings

SITE_NAME = "Green Meadows Co-operative Housing Society"


def write_society(folder: Path) -> Path:
    """The demo society's files in `folder`; returns its site file."""
    site = generate_demo(folder, towers=1, seed=5).site_file
    text = site.read_text(encoding="utf-8")
    site.write_text("\n".join(line for line in text.splitlines() if not line.startswith("groups =")) + "\n",
                    encoding="utf-8")
    return site


def settings(site: Path, data_dir: Path, **overrides) -> Settings:
    return Settings(port=0, site=str(site), data_dir=str(data_dir), log_format="text", rating_process=0,
                    sweep_interval_s=3600.0, **overrides).check()


class Served:
    """A started server and the loop it runs on; `run(coro)` runs a coroutine there."""

    def __init__(self, running: app.Running, loop: asyncio.AbstractEventLoop):
        self.running, self.loop = running, loop
        self.target = f"127.0.0.1:{running.port}"

    def run(self, coro, timeout_s: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def counts(self) -> dict[str, int]:
        """Rows of both ledgers: what a refused call must leave as it was."""
        async def both():
            await self.running.service.flush()
            return {**await self.running.service.ledger.counts(), **await self.running.dues.counts()}
        return self.run(both())


@contextlib.contextmanager
def serving(server_settings: Settings) -> Iterator[Served]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-server", daemon=True)
    thread.start()
    try:
        running = asyncio.run_coroutine_threadsafe(app.start(server_settings), loop).result(60)
        served = Served(running, loop)
        try:
            yield served
        finally:
            served.run(running.stop(1))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def failure(call) -> ClientError:
    """The ClientError a call raises (it must fail)."""
    try:
        call()
    except ClientError as exc:
        return exc
    raise AssertionError("the call succeeded")
