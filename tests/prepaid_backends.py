"""Backend pairs for the prepaid tests: the embedded default (in-process store,
SQLite ledger) and the real one (Redis with AOF, PostgreSQL), on throwaway
servers (tests/servers.py). A test module loads the fixtures with

    pytest_plugins = ["tests.prepaid_backends"]
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from rating.prepaid.ledger.base import Ledger
from rating.prepaid.ledger.postgres import PostgresLedger
from rating.prepaid.ledger.sqlite import SqliteLedger
from rating.prepaid.service import Limits, PrepaidService
from rating.prepaid.sitedocs import SiteDocs
from rating.prepaid.store.base import BalanceStore
from rating.prepaid.store.memory import MemoryStore
from rating.prepaid.store.redis import RedisStore
from tests.servers import NEEDS_SERVERS, PostgresServer, RedisServer

_schemas = itertools.count()
KINDS = [pytest.param("embedded", id="embedded"),
         pytest.param("redis+postgres", id="redis+postgres", marks=NEEDS_SERVERS)]


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer().start()
    yield server
    server.close()


@dataclass
class Backends:
    kind: str
    folder: Path
    redis: RedisServer | None = None
    postgres: PostgresServer | None = None
    schema: str = "rating"

    def store(self) -> BalanceStore:
        return MemoryStore() if self.redis is None else RedisStore(self.redis.url)

    def ledger(self) -> Ledger:
        if self.postgres is None:
            return SqliteLedger(self.folder / "data" / "ledger.db")
        return PostgresLedger(self.postgres.dsn, schema=self.schema)

    def settings(self, **overrides):
        """Server settings on these backends (any free port)."""
        from rating.server.settings import Settings

        values = dict(port=0, data_dir=str(self.folder / "data"), log_format="text",
                      sweep_interval_s=3600.0, grace_s=5.0)
        if self.redis is not None:
            values.update(redis_url=self.redis.url, postgres_dsn=self.postgres.dsn,
                          postgres_schema=self.schema)
        values.update(overrides)
        return Settings(**values).check()

    def service(self, docs: SiteDocs | None = None, *, clock=time.time, limits: Limits | None = None,
                **kwargs) -> PrepaidService:
        return PrepaidService(self.store(), self.ledger(), docs=docs, clock=clock,
                              limits=limits or Limits(), **kwargs)


@pytest.fixture(params=KINDS)
def backends(request, tmp_path) -> Backends:
    if request.param == "embedded":
        return Backends("embedded", tmp_path)
    server = request.getfixturevalue("redis_server")
    redis.Redis.from_url(server.url).flushall()
    postgres = request.getfixturevalue("postgres_server")
    return Backends("redis+postgres", tmp_path, server, postgres, schema=f"t{next(_schemas)}_{id(tmp_path)}")
