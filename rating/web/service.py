"""The HTTP listener of `rating serve`: its backends, its routes, its start and stop.

`start_web(settings, prepaid, payments)` opens the web store and the dues
ledger in the ledger's database (the SQLite file in `data_dir`, or the
PostgreSQL schema), mounts the webhook and order routes (and any `routes`
another part adds) and listens on `host:http_port`, on the running loop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from starlette.routing import BaseRoute

from rating.billing.ledger import DuesLedger
from rating.payments.webhook import GatewaySecrets
from rating.prepaid.service import PrepaidService
from rating.web.app import HttpListener, build_app
from rating.web.orders import Orders
from rating.web.payments_port import GatewayPayments
from rating.web.secrets_file import SecretsFile
from rating.web.store import WebStore
from rating.web.webhooks import Webhooks

log = logging.getLogger("rating.web")


def web_backends(settings) -> tuple[WebStore, DuesLedger]:
    """The web store and the dues ledger, where the prepaid ledger is."""
    if settings.postgres_dsn:
        from rating.billing.ledger_postgres import PostgresDuesLedger
        from rating.web.store_postgres import PostgresWebStore
        return (PostgresWebStore(settings.postgres_dsn, schema=settings.postgres_schema),
                PostgresDuesLedger(settings.postgres_dsn, schema=settings.postgres_schema))
    from rating.billing.ledger_sqlite import SqliteDuesLedger
    from rating.web.store_sqlite import SqliteWebStore
    path = Path(settings.data_dir) / "ledger.db"
    return SqliteWebStore(path), SqliteDuesLedger(path)


def secrets_source(settings) -> Callable[[], GatewaySecrets]:
    if not settings.webhook_secrets_file:
        log.warning("no webhook_secrets_file: every webhook is refused (UNKNOWN_GATEWAY)")
        empty = GatewaySecrets()
        return lambda: empty
    return SecretsFile(settings.webhook_secrets_file).current


class WebSide:
    """The running listener and what it opened."""

    def __init__(self, listener: HttpListener, store: WebStore, ledger: DuesLedger) -> None:
        self.listener, self.store, self.ledger = listener, store, ledger
        self.port = listener.port

    async def stop(self) -> None:
        await self.listener.stop()
        await self.store.close()
        await self.ledger.close()


async def start_web(settings, prepaid: PrepaidService,
                    payments: Callable[[DuesLedger], GatewayPayments], *,
                    routes: Sequence[BaseRoute] = ()) -> WebSide:
    """Open the backends, mount the routes, listen; returns once it listens."""
    store, ledger = web_backends(settings)
    await store.open()
    await ledger.open()
    site = prepaid.config.site
    webhooks = Webhooks(secrets=secrets_source(settings), payments=payments(ledger), store=store,
                        prepaid=prepaid, body_bytes_max=settings.http_body_bytes_max)
    orders = Orders(ledger=ledger, store=store, site_id=site.name, currency=site.currency,
                    tokens=settings.all_tokens())
    app = build_app([*webhooks.routes(), *orders.routes(), *routes])
    listener = await HttpListener.start(app, host=settings.host, port=settings.http_port,
                                        grace_s=settings.grace_s)
    if settings.http_port_file:
        tmp = Path(f"{settings.http_port_file}.tmp")
        tmp.write_text(str(listener.port))
        os.replace(tmp, settings.http_port_file)
    log.info("serving http", extra={"fields": {"address": f"{settings.host}:{listener.port}",
                                                "store": store.name}})
    return WebSide(listener, store, ledger)
