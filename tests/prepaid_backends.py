"""Backend pairs for the prepaid tests: the embedded default (in-process store,
SQLite ledger) and the real one (Redis with AOF, PostgreSQL), on throwaway
servers (tests/servers.py). A test module loads the fixtures with

    pytest_plugins = ["tests.prepaid_backends"]

`backends` runs a test on those two pairs; a module that must hold on every
pair `rating serve` accepts (the contract suite) overrides the fixture
with ALL_PAIRS (see make_backends): the embedded pair, the real pair with
the planner in a child process as production runs it, and the two mixed
pairs (the planner on a thread but for the real pair).
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
ALL_PAIRS = [KINDS[0],
             pytest.param("redis+postgres+child", id="redis+postgres+child", marks=NEEDS_SERVERS),
             pytest.param("redis+sqlite", id="redis+sqlite", marks=NEEDS_SERVERS),
             pytest.param("memory+postgres", id="memory+postgres", marks=NEEDS_SERVERS)]


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
    rating_process: bool = False  # the planner in a child process unless a test says otherwise

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
            values.update(redis_url=self.redis.url)
        if self.postgres is not None:
            values.update(postgres_dsn=self.postgres.dsn, postgres_schema=self.schema)
        values.update(overrides)
        return Settings(**values).check()

    def service(self, docs: SiteDocs | None = None, *, clock=time.time, limits: Limits | None = None,
                **kwargs) -> PrepaidService:
        kwargs.setdefault("rating_process", self.rating_process)
        return PrepaidService(self.store(), self.ledger(), docs=docs, clock=clock,
                              limits=limits or Limits(), **kwargs)


    def empty(self) -> None:
        """Start both backends over, empty (a new schema on PostgreSQL)."""
        if self.redis is not None:
            redis.Redis.from_url(self.redis.url).flushall()
        if self.postgres is not None:
            self.schema = f"t{next(_schemas)}_{id(self)}"
        else:
            (self.folder / "data" / "ledger.db").unlink(missing_ok=True)


@pytest.fixture(params=KINDS)
def backends(request, tmp_path) -> Backends:
    return make_backends(request, tmp_path)


def make_backends(request, tmp_path) -> Backends:
    """The pair `request.param` names (a fixture's parameter, one of ALL_PAIRS)."""
    kind = "memory+sqlite" if request.param == "embedded" else request.param
    store, ledger, *child = kind.split("+")
    pair = Backends(request.param, tmp_path, rating_process=bool(child))
    if store == "redis":
        pair.redis = request.getfixturevalue("redis_server")
    if ledger == "postgres":
        pair.postgres = request.getfixturevalue("postgres_server")
    pair.empty()
    return pair
