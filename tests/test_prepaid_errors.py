"""Machine-readable errors over gRPC: every documented ErrorInfo reason is
sent, with its status and the place (meter, row, column, field) as
metadata; docs/api.md lists exactly the reasons the code has. Internal
errors are logged with their traceback, and health checks pass a full
concurrency limit."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
from pathlib import Path

import grpc
import pyarrow as pa
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import rating.errors
from rating.client.calls import AsyncRatingClient, ClientError, RatingClient
from rating.client.status import status_info
from rating.prepaid import errors
from rating.prepaid.records import Movement
from rating.server import app, status
from tests.prepaid_site import AFTERNOON, Clock, readings, write_site

ROOT = Path(__file__).resolve().parent.parent
S = grpc.StatusCode


def documented_reasons() -> dict[str, set[str]]:
    """reason -> status names, from the table of docs/api.md's Errors section."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", section, re.MULTILINE)
    return {reason: set(re.findall(r"`([A-Z_]+)`", codes)) for reason, codes in rows}


def test_the_docs_list_exactly_the_reasons_of_the_code():
    code = {reason: {c.name for c in codes} for reason, codes in status.REASONS.items()}
    assert documented_reasons() == code
    classes = [*vars(rating.errors).values(), *vars(errors).values()]
    bases = (rating.errors.RatingError, errors.PrepaidError)
    declared = {kind.reason for kind in classes if isinstance(kind, type) and issubclass(kind, bases)}
    assert declared <= set(status.REASONS), declared - set(status.REASONS)


@pytest.fixture
def site(tmp_path):
    return write_site(tmp_path / "site", flats=6)


async def start(tmp_path, site, **overrides):
    settings = app.Settings(port=0, data_dir=str(tmp_path / "data"), site=str(site), log_format="text",
                            sweep_interval_s=3600.0, **overrides).check()
    return await app.start(settings, app.make_service(settings, clock=Clock(AFTERNOON)))


async def failure(coro) -> ClientError:
    try:
        await coro
    except ClientError as exc:
        return exc
    raise AssertionError("the call succeeded")


def test_every_reason_is_sent_for_an_input_that_causes_it(tmp_path, site):
    table = readings(6, 8)
    part = table.slice(0, 5)
    values = lambda *v: part.set_column(2, "value", pa.array(v, pa.float64()))  # noqa: E731

    async def go():
        running = await start(tmp_path, site, batch_rows_max=40)
        target = f"127.0.0.1:{running.port}"
        out: dict[str, ClientError] = {}
        async with AsyncRatingClient(target) as client:
            await client.deduct("first", table.slice(0, 24))
            out["BAD_ARROW"] = await failure(client.deduct("garbage", b"not arrow"))
            out["BAD_SCHEMA"] = await failure(client.deduct("schema", part.drop_columns(["value"])))
            out["BAD_VALUE"] = await failure(client.deduct("nan", values(1, 2, float("nan"), 3, 4)))
            ghost = part.set_column(0, "meter_id", pa.array(["E-F0000"] * 4 + ["X-9"]))
            out["UNKNOWN_METER"] = await failure(client.deduct("ghost", ghost))
            out["LIMIT_EXCEEDED"] = await failure(client.deduct("huge", values(1, 2, 1e300, 3, 4)))
            out["rows"] = await failure(client.deduct("rows", table.slice(0, 41)))
            out["UNKNOWN_ACCOUNT"] = await failure(client.topup("NOBODY", "water", 100, key="t1"))
            out["wallet"] = await failure(client.topup("F0001", "garden", 100, key="t2"))
            out["IDEMPOTENCY_CONFLICT"] = await failure(client.deduct("first", table.slice(0, 23)))
            out["INSUFFICIENT_BALANCE"] = await failure(client.refund("F0001", "water", 10**9, key="r1"))
            os.kill(running.service.planner._process.pid, signal.SIGKILL)  # a real backend fault
            out["BACKEND_UNAVAILABLE"] = await failure(client.deduct("after-kill", table.slice(24, 12)))
            watch = asyncio.ensure_future(failure(_drain(client.events())))
            await asyncio.sleep(0.2)

            def configs():
                with RatingClient(target) as sync:
                    return (failure_sync(lambda: sync.load_config(site_toml="[site]\ntime_zone = 5")),
                            failure_sync(lambda: sync.load_config(tariffs_toml=["x = 1"])))

            out["BAD_CONFIG"], out["BAD_TARIFF"] = await asyncio.to_thread(configs)
            late = await _status_of(running.service.move(
                Movement("topup", "late", "F0001", "water", 100), deadline=time.monotonic() - 1))
            await running.stop(1)
            out["DRAINING"] = await watch
        return out, late

    out, late = asyncio.run(go())
    got = {name: (e.code, e.reason, e.metadata) for name, e in out.items()}
    for name, (code, reason, _) in got.items():
        assert reason == name or name in ("rows", "wallet"), (name, reason)
        assert code in status.REASONS[reason], (name, code)
    assert got["rows"][:2] == (S.RESOURCE_EXHAUSTED, "LIMIT_EXCEEDED")
    assert got["LIMIT_EXCEEDED"][0] == S.INVALID_ARGUMENT
    assert got["wallet"][1:] == ("BAD_VALUE", {"field": "wallet"})
    assert got["UNKNOWN_METER"][2] == {"batch_id": "ghost", "meter": "X-9", "row": "5", "column": "meter_id"}
    assert got["BAD_VALUE"][2] == {"batch_id": "nan", "row": "3", "column": "value"}
    assert got["LIMIT_EXCEEDED"][2] == {"batch_id": "huge", "row": "3", "column": "value"}
    assert got["BAD_SCHEMA"][2] == {"batch_id": "schema", "column": "value"}
    assert got["BAD_ARROW"][2] == {"field": "readings"}
    assert got["BAD_CONFIG"][2] == {"field": "time_zone"}
    assert got["UNKNOWN_ACCOUNT"][2] == {"account_id": "NOBODY"}
    assert got["IDEMPOTENCY_CONFLICT"][2]["key"] == "first"
    assert got["BACKEND_UNAVAILABLE"][2]["committed"] == "false"
    assert late == (S.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED")
    sent = {reason for _, reason, _ in got.values()} | {late[1], "INTERNAL"}  # INTERNAL: the next test
    assert sent == set(status.REASONS)


async def _drain(stream):
    async for _ in stream:
        pass


def failure_sync(call) -> ClientError:
    try:
        call()
    except ClientError as exc:
        return exc
    raise AssertionError("the call succeeded")


async def _status_of(coro) -> tuple[grpc.StatusCode, str]:
    """The status and reason the server sends for the error `coro` raises."""
    try:
        await coro
    except errors.PrepaidError as exc:
        reason, _ = status_info(status.status_of(exc))
        return status.code_of(exc), reason
    raise AssertionError("no error")


def test_an_internal_error_reaches_the_client_as_internal_and_the_log_has_its_traceback(
        tmp_path, site, caplog):
    async def broken_balance(account_id):
        raise RuntimeError("a bug in the balance path")

    async def go():
        running = await start(tmp_path, site)
        running.service.balance = broken_balance  # a defect, injected where no input reaches one
        # INTERNAL leaves the outcome unknown: the client retries it until its timeout
        async with AsyncRatingClient(f"127.0.0.1:{running.port}", timeout_s=0.5) as client:
            error = await failure(client.balance("F0001"))
        await running.stop(1)
        return error

    with caplog.at_level(logging.INFO, logger="rating"):
        error = asyncio.run(go())
    assert (error.code, error.reason) == (S.INTERNAL, "INTERNAL")
    assert "RuntimeError" in error.message and "bug" not in error.message  # the details stay in the log
    record, *retries = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "GetBalance INTERNAL" and record.exc_info is not None
    assert all(r.getMessage() == record.getMessage() for r in retries)
    text = logging.Formatter().formatException(record.exc_info)
    assert "broken_balance" in text and "a bug in the balance path" in text


def test_health_checks_answer_while_the_concurrency_limit_is_full(tmp_path, site):
    async def go():
        running = await start(tmp_path, site, concurrent_rpcs_max=4)
        target = f"127.0.0.1:{running.port}"
        async with AsyncRatingClient(target) as client:
            watches = [asyncio.ensure_future(_drain(client.events())) for _ in range(4)]
            await asyncio.sleep(0.3)
            refused = await failure(client.balance("F0001"))
            health = health_pb2_grpc.HealthStub(client.channel)
            checks = [(await health.Check(health_pb2.HealthCheckRequest(service=s), timeout=5)).status
                      for s in ("", "rating.v1.PrepaidService")]
            watched = await anext(aiter(health.Watch(health_pb2.HealthCheckRequest(), timeout=5)))
            for watch in watches:
                watch.cancel()
            await asyncio.gather(*watches, return_exceptions=True)
            await asyncio.sleep(0.3)
            after = (await client.balance("F0001")).account_id
        await running.stop(1)
        return refused, checks, watched.status, after

    refused, checks, watched, after = asyncio.run(go())
    assert (refused.code, refused.reason) == (S.RESOURCE_EXHAUSTED, "LIMIT_EXCEEDED")
    assert checks == [health_pb2.HealthCheckResponse.SERVING] * 2
    assert watched == health_pb2.HealthCheckResponse.SERVING
    assert after == "F0001"  # the ended streams no longer count
