"""The server with its HTTP listener, in a thread of its own with its own event
loop, so a test calls it over real HTTP (a blocking httpx client) while it runs;
`call(coro)` runs a coroutine on the server's loop to read its ledgers."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

from rating.server import app


class ServerThread:
    def __init__(self, settings, *, payments=None, **service_kwargs) -> None:
        self.settings, self.payments, self.service_kwargs = settings, payments, service_kwargs
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="rating-server", daemon=True)
        self.running: app.Running | None = None

    def __enter__(self) -> ServerThread:
        self.thread.start()
        service = app.make_service(self.settings, **self.service_kwargs)
        self.running = self.call(app.start(self.settings, service, payments=self.payments))
        return self

    def __exit__(self, *exc) -> None:
        if self.running is not None:
            self.call(self.running.stop(0.5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()

    def call(self, coro, timeout_s: float = 60.0):
        future: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout_s)

    @property
    def base_url(self) -> str:
        assert self.running is not None and self.running.web is not None
        return f"http://127.0.0.1:{self.running.web.port}"

    @property
    def service(self):
        assert self.running is not None
        return self.running.service
