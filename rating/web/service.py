"""The HTTP listener of `rating serve`: its backends, its routes, its start and stop.

`start_web(settings, prepaid, ledger, payments)` opens the web store in the
ledger's database (the SQLite file in `data_dir`, or the PostgreSQL schema),
mounts the webhook, order and settlement routes (and any `routes` another
part adds) and listens on `host:http_port`, on the running loop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from starlette.routing import BaseRoute

from rating.billing.ledger import DuesLedger
from rating.payments.webhook import GatewaySecrets
from rating.prepaid.service import PrepaidService
from rating.web.app import BearerTokens, HttpListener, build_app
from rating.web.orders import Orders
from rating.web.payments_port import GatewayPayments
from rating.web.secrets_file import SecretsFile
from rating.web.settlement_routes import Settlements
from rating.web.store import WebStore
from rating.web.webhooks import Webhooks

log = logging.getLogger("rating.web")


def web_store(settings) -> WebStore:
    """The web rows where the prepaid ledger is: its SQLite file, or its PostgreSQL schema."""
    if settings.postgres_dsn:
        from rating.web.store_postgres import PostgresWebStore
        return PostgresWebStore(settings.postgres_dsn, schema=settings.postgres_schema)
    from rating.web.store_sqlite import SqliteWebStore
    return SqliteWebStore(Path(settings.data_dir) / "web.db")


def secrets_source(settings) -> Callable[[], GatewaySecrets]:
    if not settings.webhook_secrets_file:
        log.warning("no webhook_secrets_file: every webhook is refused (UNKNOWN_GATEWAY)")
        empty = GatewaySecrets()
        return lambda: empty
    return SecretsFile(settings.webhook_secrets_file).current


class WebSide:
    """The running listener and the store it opened."""

    def __init__(self, listener: HttpListener, store: WebStore) -> None:
        self.listener, self.store = listener, store
        self.port = listener.port

    async def stop(self) -> None:
        await self.listener.stop()
        await self.store.close()


async def start_web(settings, prepaid: PrepaidService, ledger: DuesLedger, payments: GatewayPayments, *,
                    callers: Mapping[str, tuple[str, str]], routes: Sequence[BaseRoute] = ()) -> WebSide:
    """Open the web store, mount the routes, listen; returns once it listens. `ledger`
    (the server's dues ledger, open) and `payments` stay the caller's to close;
    `callers` are the server's tokens with their (role, site)."""
    store = web_store(settings)
    await store.open()
    site = prepaid.config.site
    webhooks = Webhooks(secrets=secrets_source(settings), payments=payments, store=store,
                        prepaid=prepaid, body_bytes_max=settings.http_body_bytes_max)
    tokens = BearerTokens(callers, site=site.name)
    orders = Orders(ledger=ledger, store=store, site_id=site.name, currency=site.currency, tokens=tokens)
    settlements = Settlements(store=store, currency=site.currency, tokens=tokens)
    app = build_app([*webhooks.routes(), *orders.routes(), *settlements.routes(), *routes])
    listener = await HttpListener.start(app, host=settings.host, port=settings.http_port,
                                        grace_s=settings.grace_s)
    if settings.http_port_file:
        tmp = Path(f"{settings.http_port_file}.tmp")
        tmp.write_text(str(listener.port))
        os.replace(tmp, settings.http_port_file)
    log.info("serving http", extra={"fields": {"address": f"{settings.host}:{listener.port}",
                                                "store": store.name}})
    return WebSide(listener, store)
