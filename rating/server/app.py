"""Build, start and drain the gRPC server; structured logs.

`serve(settings)` runs until SIGTERM or SIGINT, then drains: health turns
NOT_SERVING, streams stop taking new batches and answer the ones they hold,
in-flight calls get `grace_s` to finish, answered operations are settled
into the ledger, and the backends are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from starlette.routing import BaseRoute

from rating.billing.inputs import site_billing
from rating.billing.ledger import DuesLedger
from rating.billing.numbering import Numbering
from rating.notify.relay import Relay
from rating.notify.site import ReminderSite, close
from rating.payments.settings import PaymentSettings, load_payment_settings
from rating.prepaid import errors
from rating.prepaid.ledger.base import Ledger
from rating.prepaid.service import Limits, PrepaidService
from rating.prepaid.sitedocs import SiteDocs
from rating.prepaid.store.base import BalanceStore
from rating.server import roles
from rating.server.billing_servicer import BillingRules, BillingServicer
from rating.server.interceptors import BearerAuth, ConcurrencyLimit
from rating.server.notify_servicer import NotifyServicer, Reminding
from rating.server.payments_staff import PaymentsStaffServicer
from rating.server.servicers import PrepaidServicer, RatingServicer
from rating.server.settings import Settings
from rating.server.usage_servicer import UsageServicer, usage_service
from rating.usage.service import UsageService
from rating.v1 import (
    billing_pb2,
    billing_pb2_grpc,
    notify_pb2,
    notify_pb2_grpc,
    payments_pb2,
    payments_pb2_grpc,
    rating_pb2,
    rating_pb2_grpc,
    usage_pb2,
    usage_pb2_grpc,
)
from rating.web.dues_payments import DuesGatewayPayments
from rating.web.payments_port import GatewayPayments
from rating.web.service import WebSide, start_web

log = logging.getLogger("rating.server")
PaymentsFactory = Callable[[DuesLedger], GatewayPayments]
SERVICES = [*(rating_pb2.DESCRIPTOR.services_by_name[name].full_name
              for name in ("RatingService", "PrepaidService")),
            billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name,
            payments_pb2.DESCRIPTOR.services_by_name["PaymentsService"].full_name,
            notify_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name,
            usage_pb2.DESCRIPTOR.services_by_name["UsageService"].full_name]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": round(record.created, 6), "level": record.levelname.lower(), "logger": record.name,
                 "msg": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """A line for people: time, level, logger, message, then the record's fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        line = super().format(record)
        return line + "".join(f" {k}={v}" for k, v in fields.items()) if fields else line


def setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger("rating")
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    root.propagate = False


def backends(settings: Settings) -> tuple[BalanceStore, Ledger]:
    if settings.redis_url:
        from rating.prepaid.store.redis import RedisStore
        store: BalanceStore = RedisStore(settings.redis_url)
    else:
        from rating.prepaid.store.memory import MemoryStore
        store = MemoryStore()
    if settings.postgres_dsn:
        from rating.prepaid.ledger.postgres import PostgresLedger
        ledger: Ledger = PostgresLedger(settings.postgres_dsn, schema=settings.postgres_schema)
    else:
        from rating.prepaid.ledger.sqlite import SqliteLedger
        ledger = SqliteLedger(Path(settings.data_dir) / "ledger.db")
    return store, ledger


def dues_ledger(settings: Settings):
    """The dues ledger beside the prepaid ledger: the same SQLite file, or the same PostgreSQL schema."""
    if settings.postgres_dsn:
        from rating.billing.ledger_postgres import PostgresDuesLedger
        return PostgresDuesLedger(settings.postgres_dsn, schema=settings.postgres_schema)
    from rating.billing.ledger_sqlite import SqliteDuesLedger
    return SqliteDuesLedger(Path(settings.data_dir) / "ledger.db")


def make_service(settings: Settings, **kwargs) -> PrepaidService:
    """The prepaid service of the settings' site; `postpaid_groups` (the groups the
    site's share heads bill) is read from the billing file beside it unless given."""
    if "postpaid_groups" not in kwargs:
        kwargs["postpaid_groups"] = postpaid_groups(billing_rules(settings))
    docs = SiteDocs.from_site_file(settings.site) if settings.site else None
    if docs is not None:  # a bad site file stops here, before any backend is made or touched
        docs.build(postpaid_groups=kwargs["postpaid_groups"])
    store, ledger = backends(settings)
    limits = Limits(batch_rows_max=settings.batch_rows_max, apply_retry_s=settings.apply_retry_s,
                    anomaly_rows_max=settings.anomaly_rows_max, ops_pending_max=settings.ops_pending_max)
    kwargs.setdefault("rating_process", bool(settings.rating_process))
    return PrepaidService(store, ledger, docs=docs, limits=limits, **kwargs)


def billing_rules(settings: Settings) -> BillingRules | None:
    """The site's billing file, read and checked (None: no site, or no billing file)."""
    return BillingRules.of_site_file(settings.site) if settings.site else None


def postpaid_groups(rules: BillingRules | None) -> frozenset[str]:
    """The shared-area groups a served site may have: those its bill splits."""
    return frozenset() if rules is None else rules.postpaid_groups


def grpc_options(settings: Settings) -> list[tuple[str, int]]:
    ms = lambda seconds: int(seconds * 1000)  # noqa: E731
    options = [
        ("grpc.max_receive_message_length", settings.message_bytes_max),
        ("grpc.max_send_message_length", settings.message_bytes_max),
        ("grpc.keepalive_time_ms", ms(settings.keepalive_time_s)),
        ("grpc.keepalive_timeout_ms", ms(settings.keepalive_timeout_s)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", ms(settings.ping_interval_min_s)),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.so_reuseport", 0),  # a port in use is an error, not a second listener
    ]
    if settings.connection_idle_max_s > 0:
        options.append(("grpc.max_connection_idle_ms", ms(settings.connection_idle_max_s)))
    return options


def credentials(settings: Settings) -> grpc.ServerCredentials | None:
    if not settings.tls_cert:
        return None
    key, cert = Path(settings.tls_key).read_bytes(), Path(settings.tls_cert).read_bytes()
    ca = Path(settings.tls_client_ca).read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                       require_client_auth=ca is not None)


class Reminders:
    """The site's relay, running pass after pass on the server's dues ledger."""

    def __init__(self, relay: Relay, interval_s: float):
        self.relay, self._stop = relay, asyncio.Event()
        self._task = asyncio.ensure_future(self._run(interval_s))

    async def _run(self, interval_s: float) -> None:
        while not self._stop.is_set():
            try:
                await self.relay.run_forever(self._stop, interval_s=interval_s)
            except Exception:  # noqa: BLE001 - a ledger hiccup must not end the relay: logged, retried
                log.exception("reminders relay pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), interval_s)

    async def stop(self) -> None:
        self._stop.set()
        await self._task
        await close(self.relay)


async def _attach_reminders(settings: Settings, site: ReminderSite | None, dues,
                            service: PrepaidService
                            ) -> tuple[Relay | None, list[BaseRoute], Reminding | None]:
    """When the site has a reminders.toml: the notices of bills issued and payments
    received through this server (BillingService, gateway webhooks: both write `dues`),
    its prepaid alerts (written as the prepaid ledger settles their events), its relay
    (started once the server listens), and the STOP/START reply routes."""
    if site is None or dues is None:
        return None, [], None
    outbox, directory = await site.attach(dues)
    alerts = await site.attach_alerts(outbox, service.ledger, service.upkeep.recovered_seqs)
    if site.rules.alerts and not alerts:
        log.warning("prepaid alerts off: the prepaid ledger is not in the dues ledger's database")
    log.info("reminders on", extra={"fields": {"channels": len(site.rules.channels), "prepaid_alerts": alerts,
                                                "interval_s": settings.reminders_interval_s}})
    return site.relay(outbox), site.replies(directory), Reminding(site, outbox, directory, dues)


class Running:
    """A started server and what it needs to stop."""

    def __init__(self, server: grpc.aio.Server, service: PrepaidService, prepaid: PrepaidServicer,
                 checks: health.aio.HealthServicer, port: int, settings: Settings, dues=None,
                 web: WebSide | None = None, reminders: Reminders | None = None,
                 usage: UsageService | None = None):
        self.server, self.service, self.prepaid, self.health = server, service, prepaid, checks
        self.port, self.settings, self.dues, self.web = port, settings, dues, web
        self.reminders, self.usage = reminders, usage
        self._sweeper = asyncio.ensure_future(self._sweep_forever())
        self._renewed_on: dt.date | None = None
        renewing = usage is not None and bool(usage.subscriptions)
        self._renewer = asyncio.ensure_future(self._renew_forever()) if renewing else None

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_s)
            try:
                swept = await self.service.sweep()
                if swept:
                    log.info("cut off %d wallets after their friendly hours", len(swept))
            except errors.PrepaidError as exc:
                log.warning("sweep of deferred cut-offs failed: %s", exc.message)

    async def _renew_forever(self) -> None:
        """Parking passes renewed once a local day (at start, then when the date changes)."""
        while True:
            await self.renew_passes_today()
            await asyncio.sleep(self.settings.sweep_interval_s)

    async def renew_passes_today(self) -> None:
        assert self.usage is not None
        today = self.service.now().astimezone(self.usage.settings.site.zone).date()
        if today == self._renewed_on:
            return
        try:
            renewals = await self.usage.renew_passes(today)
        except errors.PrepaidError as exc:
            log.warning("pass renewal failed: %s", exc.message)
            return
        self._renewed_on = today
        outcomes = [r.outcome for r in renewals]
        log.info("passes renewed", extra={"fields": {o: outcomes.count(o) for o in sorted(set(outcomes))}})

    async def stop(self, grace_s: float | None = None) -> None:
        grace_s = self.settings.grace_s if grace_s is None else grace_s
        started = time.monotonic()
        log.info("draining", extra={"fields": {"grace_s": grace_s}})
        await self.health.enter_graceful_shutdown()  # NOT_SERVING
        self.prepaid.draining.set()
        self._sweeper.cancel()
        if self._renewer is not None:
            self._renewer.cancel()
        if self.web is not None:  # webhooks in flight answer first: they may be writing the ledger
            await self.web.stop()
        await self.server.stop(grace_s)
        if self.reminders is not None:  # a pass in flight finishes before the ledgers close
            await self.reminders.stop()
        await self.service.close()
        if self.dues is not None:
            await self.dues.close()
        log.info("stopped", extra={"fields": {"drain_ms": round((time.monotonic() - started) * 1000, 1)}})


async def _health_and_reflection(server: grpc.aio.Server) -> health.aio.HealthServicer:
    """Health checks ("" and every service SERVING from the start) and reflection."""
    checks = health.aio.HealthServicer()
    for name in SERVICES:
        await checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    reflection.enable_server_reflection([*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    return checks


def _add_servicers(server: grpc.aio.Server, settings: Settings, service: PrepaidService, dues,
                   rules: BillingRules | None, notify: Reminding | None,
                   usage: UsageService | None) -> PrepaidServicer:
    """Every service's handlers on the server; the prepaid one (draining stops its streams)."""
    prepaid = PrepaidServicer(service, stream_window=settings.stream_window_batches)
    rating_pb2_grpc.add_PrepaidServiceServicer_to_server(prepaid, server)
    rating_pb2_grpc.add_RatingServiceServicer_to_server(RatingServicer(service), server)
    billing = BillingServicer(service, dues, rules)
    billing_pb2_grpc.add_BillingServiceServicer_to_server(billing, server)
    payments_servicer = PaymentsStaffServicer(billing, payment_settings(settings, service))
    payments_pb2_grpc.add_PaymentsServiceServicer_to_server(payments_servicer, server)
    notify_pb2_grpc.add_NotifyServiceServicer_to_server(NotifyServicer(notify), server)
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageServicer(usage), server)
    return prepaid


async def start(settings: Settings, service: PrepaidService | None = None, *,
                payments: PaymentsFactory | None = None, web_routes: Sequence[BaseRoute] = ()) -> Running:
    """Start the backends and the server (and its HTTP listener when `http_port` is set,
    with `web_routes` beside the webhooks); returns once both listen."""
    rules = billing_rules(settings)  # checked before the ledgers
    reminding = ReminderSite.of(settings.site) if settings.site else None  # and the reminders.toml
    service = service or make_service(settings, postpaid_groups=postpaid_groups(rules))
    callers = roles.callers(settings.all_tokens())
    await service.start()
    usage = await _usage(settings, service)
    web_on = settings.http_port >= 0
    dues = await _open_dues(settings, service) if rules or web_on else None
    relay, reply_routes, notify = await _attach_reminders(settings, reminding, dues, service)
    # the concurrency limit is an interceptor, not the server's own: health checks pass it
    interceptors = [BearerAuth(callers, site_of=lambda: service.config.site.name),
                    ConcurrencyLimit(settings.concurrent_rpcs_max)]
    server = grpc.aio.server(options=grpc_options(settings), interceptors=interceptors)
    prepaid = _add_servicers(server, settings, service, dues, rules, notify, usage)
    checks = await _health_and_reflection(server)
    address = f"{settings.host}:{settings.port}"
    creds = credentials(settings)
    port = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
    await server.start()
    if settings.port_file:
        tmp = Path(f"{settings.port_file}.tmp")
        tmp.write_text(str(port))
        os.replace(tmp, settings.port_file)
    log.info("serving", extra={"fields": {
        "address": f"{settings.host}:{port}", "tls": bool(creds), "mutual_tls": bool(settings.tls_client_ca),
        "auth": "bearer" if callers else "off", "store": service.store.name, "ledger": service.ledger.name,
        "billing": "on" if dues else "off", "meters": len(service.config.registry.meters),
        "config_version": service.config_version}})
    if not callers:
        log.warning("no bearer tokens configured: authentication is off")
    web = None
    if web_on:
        assert dues is not None
        gateway_payments = (payments or _dues_payments(settings, service, rules))(dues)
        web = await start_web(settings, service, dues, gateway_payments, routes=[*web_routes, *reply_routes],
                              callers={t: (c.role.value, c.site) for t, c in callers.items()})
    reminders = Reminders(relay, settings.reminders_interval_s) if relay is not None else None
    return Running(server, service, prepaid, checks, port, settings, dues, web, reminders, usage)


def _dues_payments(settings: Settings, service: PrepaidService,
                   rules: BillingRules | None) -> PaymentsFactory:
    """Gateway payments into the dues ledger: receipts numbered by the site's billing file,
    allocated by its payments.toml [allocation] (defaults without them)."""
    numbering, rule = Numbering(), payment_settings(settings, service).allocation
    if rules is not None:
        numbering = site_billing(service.config, rules.text, where=rules.where,
                                 templates=rules.templates).numbering
    return lambda dues: DuesGatewayPayments(dues, numbering=numbering, rule=rule)


def payment_settings(settings: Settings, service: PrepaidService) -> PaymentSettings:
    """The site's payments.toml, checked (the defaults without a site or that file)."""
    return load_payment_settings(settings.site, service.config.site) if settings.site else PaymentSettings()


async def _usage(settings: Settings, service: PrepaidService) -> UsageService | None:
    """The site's usage file, read once the configuration is in force (the service stops on an error)."""
    try:
        return usage_service(settings.site, service, settings.data_dir)
    except BaseException:
        await service.close()
        raise


async def _open_dues(settings: Settings, service: PrepaidService):
    """The dues ledger, opened once the prepaid ledger is claimed (the server holds both)."""
    dues = dues_ledger(settings)
    try:
        await dues.open()
    except BaseException:
        await service.close()
        raise
    return dues


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain and stop."""
    running = await start(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop()
