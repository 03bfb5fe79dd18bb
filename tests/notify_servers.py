"""A real local HTTP sink for the webhook channel's tests and bench: a
threading HTTP/1.1 server on a free loopback port that records each POST and
answers the statuses a test queues (200 with an id by default). Like a
provider with a duplicate check, it answers a repeated Idempotency-Key with
the first id and counts it as a duplicate."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HttpSink:
    def __init__(self, *, record: bool = True):
        self.requests: list[dict] = []
        self.statuses: deque[int] = deque()
        self.delay_s = 0.0
        self.duplicates = 0
        self.count = 0
        self._ids: dict[str, str] = {}
        self._record = record
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # an answer's headers and body would wait for a delayed ACK
            wbufsize = -1  # ... and go out in one write, flushed after each request

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = sink._answer(self.headers.get("Idempotency-Key", ""), body)
                if sink.delay_s:
                    time.sleep(sink.delay_s)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/send"

    def _answer(self, key: str, body: bytes) -> tuple[int, dict]:
        with self._lock:
            self.count += 1
            if self._record:
                self.requests.append({"key": key, **json.loads(body)})
            status = self.statuses.popleft() if self.statuses else 200
            if status != 200:
                return status, {"error": f"scripted {status}"}
            if key in self._ids:
                self.duplicates += 1
            first = self._ids.setdefault(key, f"msg-{len(self._ids) + 1}")
            return 200, {"id": first}

    def start(self) -> HttpSink:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
