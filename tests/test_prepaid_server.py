"""The gRPC server end to end: statuses, limits, auth, TLS, health,
reflection, streams with flow control, draining, batch rating."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import grpc
import pyarrow as pa
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rating.client.calls import AsyncRatingClient, ClientError, readings_bytes
from rating.config.loader import load_config
from rating.engine import rate
from rating.prepaid.sitedocs import SiteDocs
from rating.server import app
from rating.v1 import rating_pb2
from tests.prepaid_site import AFTERNOON, Clock, batches, readings, write_site

pytest_plugins = ["tests.prepaid_backends"]  # fixtures: backends, redis_server, postgres_server
S = grpc.StatusCode


@pytest.fixture
def site(tmp_path):
    return write_site(tmp_path / "site", flats=6)


async def started(backends, site, **overrides):
    settings = backends.settings(site=str(site), **overrides)
    service = app.make_service(settings, clock=Clock(AFTERNOON))  # cut-offs are not deferred
    return await app.start(settings, service)


async def counts(running):
    await running.service.flush()
    return await running.service.ledger.counts()


def test_statuses_name_the_problem_and_nothing_changes(backends, site):
    table = readings(6, 8)

    async def go():
        running = await started(backends, site, batch_rows_max=40)
        out = {}
        async with AsyncRatingClient(f"127.0.0.1:{running.port}") as client:
            await client.deduct("ok", table.slice(0, 24))
            before = await counts(running)

            async def status(coro):
                try:
                    await coro
                except ClientError as exc:
                    return exc
                raise AssertionError("the call succeeded")

            out["garbage"] = await status(client.deduct("g", b"definitely not arrow"))
            out["empty"] = await status(client.deduct("e", b""))
            missing = table.slice(24, 12).drop_columns(["value"])
            out["schema"] = await status(client.deduct("s", missing))
            ghost = table.slice(24, 12).set_column(0, "meter_id", pa.array(["E-F0000"] * 11 + ["X-9"]))
            out["meter"] = await status(client.deduct("m", ghost))
            out["rows"] = await status(client.deduct("r", table.slice(24, 41)))
            out["account"] = await status(client.topup("NOBODY", "water", 100, key="t"))
            out["wallet"] = await status(client.topup("F0001", "garden", 100, key="t"))
            out["conflict"] = await status(client.deduct("ok", table.slice(0, 23)))
            out["refund"] = await status(client.refund("F0001", "water", 100, key="rf"))
            out["no_key"] = await status(client.deduct("", table.slice(24, 12)))
            after = await counts(running)
        await running.stop(1)
        return out, before, after

    out, before, after = asyncio.run(go())
    expected = {"garbage": S.INVALID_ARGUMENT, "empty": S.INVALID_ARGUMENT, "schema": S.INVALID_ARGUMENT,
                "meter": S.INVALID_ARGUMENT, "rows": S.RESOURCE_EXHAUSTED, "account": S.NOT_FOUND,
                "wallet": S.INVALID_ARGUMENT, "conflict": S.ALREADY_EXISTS, "refund": S.FAILED_PRECONDITION,
                "no_key": S.INVALID_ARGUMENT}
    assert {k: e.code for k, e in out.items()} == expected
    assert "'value'" in out["schema"].message
    assert "X-9" in out["meter"].message and "row 12" in out["meter"].message
    assert out["conflict"].reason == "IDEMPOTENCY_CONFLICT" and out["conflict"].metadata["key"] == "ok"
    assert out["conflict"].metadata["first_payload_sha256"] != out["conflict"].metadata["payload_sha256"]
    assert out["rows"].reason == "LIMIT_EXCEEDED"
    assert after == before


def test_oversized_messages_are_refused_before_anything_runs(backends, site):
    big = readings(6, 300)  # ~3600 readings, well over 16 KiB as Arrow IPC

    async def go():
        running = await started(backends, site, message_bytes_max=16 * 1024)
        before = await counts(running)
        async with AsyncRatingClient(f"127.0.0.1:{running.port}") as client:
            with pytest.raises(ClientError) as info:
                await client.deduct("big", big)
            small = await client.deduct("small", big.slice(0, 60))
        after = await counts(running)
        await running.stop(1)
        return info.value, before, after, small

    error, before, after, small = asyncio.run(go())
    assert len(readings_bytes(big)) > 16 * 1024
    assert error.code == S.RESOURCE_EXHAUSTED
    assert after["ops"] == before["ops"] + 1 and small.sequence == 1


def test_bearer_tokens_guard_every_call_but_health(backends, site, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# staff\nalpha-token\nbeta-token\n")

    async def go():
        running = await started(backends, site, token_file=str(tokens))
        target = f"127.0.0.1:{running.port}"
        results = {}
        for name, token in (("none", None), ("bad", "gamma"), ("good", "beta-token")):
            async with AsyncRatingClient(target, token=token) as client:
                results[f"health-{name}"] = await client.health()
                try:
                    results[name] = (await client.balance("F0001")).account_id
                except ClientError as exc:
                    results[name] = exc.code
        await running.stop(1)
        return results

    results = asyncio.run(go())
    assert results["none"] == S.UNAUTHENTICATED and results["bad"] == S.UNAUTHENTICATED
    assert results["good"] == "F0001"
    assert {results[f"health-{n}"] for n in ("none", "bad", "good")} == {
        health_pb2.HealthCheckResponse.SERVING}


def test_reflection_lists_the_services_and_serves_their_descriptors(backends, site):
    async def go():
        running = await started(backends, site)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo()
            await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            symbol = "rating.v1.PrepaidService"
            await call.write(reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol))
            await call.write(reflection_pb2.ServerReflectionRequest(file_by_filename="nope.proto"))
            await call.done_writing()
            answers = [r async for r in call]
        await running.stop(1)
        return answers

    from google.protobuf import descriptor_pb2

    for answers in [asyncio.run(go())]:
        names = {s.name for s in answers[0].list_services_response.service}
        assert {"rating.v1.PrepaidService", "rating.v1.RatingService", "grpc.health.v1.Health",
                "grpc.reflection.v1alpha.ServerReflection"} <= names
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in answers[1].file_descriptor_response.file_descriptor_proto]
        assert files[0].name == "rating/v1/rating.proto"
        assert {"google/protobuf/timestamp.proto", "google/protobuf/any.proto"} <= {f.name for f in files}
        assert "StreamDeduct" in {m.name for s in files[0].service for m in s.method}
        assert answers[2].error_response.error_code == S.NOT_FOUND.value[0]


def test_stream_answers_in_order_with_flow_control_and_stops_at_a_bad_batch(backends, site):
    table = readings(6, 20)
    parts = batches(table, 24)
    bad_at = 7
    sent = [(f"b{i}", p) for i, p in enumerate(parts)]
    sent[bad_at] = ("bad", b"\x00garbage")

    async def go():
        running = await started(backends, site, stream_window_batches=3)
        async with AsyncRatingClient(f"127.0.0.1:{running.port}") as client:
            replies = []
            with pytest.raises(ClientError) as info:
                async for reply in client.stream(sent, window=3):
                    replies.append(reply)
            resumed = [r async for r in client.stream(
                [(f"b{i}", p) for i, p in enumerate(parts)][len(replies):], window=3)]
            await running.service.flush()  # events are recorded when settled, just after the answers
            events = [e async for e in client.events(stop_at_end=True)]
            later = [e async for e in client.events(events[3].cursor, stop_at_end=True)]
        await running.stop(1)
        return replies, info.value, resumed, events, later

    replies, error, resumed, events, later = asyncio.run(go())
    assert [r.batch_id for r in replies] == [f"b{i}" for i in range(bad_at)]
    assert all(r.window == 3 for r in replies) and [r.sequence for r in replies] == list(range(1, bad_at + 1))
    assert error.code == S.INVALID_ARGUMENT
    assert [r.batch_id for r in resumed] == [f"b{i}" for i in range(bad_at, len(parts))]
    debited: Counter = Counter()
    for r in replies + resumed:
        for row in r.deductions.to_pylist():
            debited[(row["account_id"], row["wallet"])] += row["amount_minor"]
    config = load_config(site)
    wallet_of = {m.meter_id: m.wallet for m in config.registry.meters}
    charges = rate(table, config=config).charges
    expected: Counter = Counter()
    for a, m, amount in zip(charges["account_id"].to_pylist(), charges["meter_id"].to_pylist(),
                            charges["amount"].to_pylist(), strict=True):
        expected[(a, wallet_of.get(m, "maintenance"))] += int(amount.scaleb(2))
    assert +debited == +expected
    assert len(events) > 4 and [e.cursor for e in later] == [e.cursor for e in events[4:]]


def test_draining_answers_what_the_stream_holds_and_settles_it(backends, site):
    parts = batches(readings(6, 40), 12)

    async def go():
        running = await started(backends, site)
        client = AsyncRatingClient(f"127.0.0.1:{running.port}")
        replies = []

        async def slow_batches():
            for i, p in enumerate(parts):
                yield f"b{i}", p
                await asyncio.sleep(0.01)

        async def consume():
            async for reply in client.stream(slow_batches(), window=4):
                replies.append(reply)

        streaming = asyncio.ensure_future(consume())
        while len(replies) < 5:
            await asyncio.sleep(0.01)
        await running.stop(5)
        with pytest.raises(ClientError) as info:
            await streaming
        await client.close()
        ledger = backends.ledger()
        await ledger.open()
        pending, ops = await ledger.pending(), await ledger.counts()
        await ledger.close()
        return replies, info.value, pending, ops

    replies, error, pending, ops = asyncio.run(go())
    assert error.code == S.UNAVAILABLE and "shutting down" in error.message
    assert [r.batch_id for r in replies] == [f"b{i}" for i in range(len(replies))]
    assert pending == [] and ops["ops"] == len(replies)  # every answered batch settled, nothing more


def test_batch_rating_over_grpc_equals_the_engine(backends, site):
    """At the server's clock: a reading a month after it is a future_reading,
    though the wall clock is long past it."""
    ahead = readings(6, 1, start=AFTERNOON + dt.timedelta(days=30)).slice(0, 1)
    table = pa.concat_tables([readings(6, 10), ahead])

    async def go():
        running = await started(backends, site)
        async with AsyncRatingClient(f"127.0.0.1:{running.port}") as client:
            charges, anomalies = await client.rate(table)
        await running.stop(1)
        return charges, anomalies

    charges, anomalies = asyncio.run(go())
    expected = rate(table, config=load_config(site), now=AFTERNOON)
    assert charges.equals(expected.charges) and anomalies.equals(expected.anomalies)
    assert anomalies["code"].to_pylist() == ["future_reading"]


def test_load_config_over_grpc_then_deduct(backends, tmp_path):
    site = write_site(tmp_path / "site", flats=3)
    folder = site.parent
    docs = SiteDocs.from_site_file(site)

    async def go():
        settings = backends.settings()
        running = await app.start(settings)  # nothing configured yet: no meters
        async with AsyncRatingClient(f"127.0.0.1:{running.port}") as client:
            with pytest.raises(ClientError) as before:
                await client.deduct("b0", readings(3, 2))
            loaded = await client.prepaid.LoadConfig(rating_pb2.LoadConfigRequest(
                site_toml=docs.site_toml, tariffs_toml=list(docs.tariffs_toml),
                meters=(folder / "meters.csv").read_bytes(), accounts=(folder / "accounts.csv").read_bytes()))
            reply = await client.deduct("b0", readings(3, 2))
        await running.stop(1)
        return before.value, loaded, reply

    before, loaded, reply = asyncio.run(go())
    assert before.code == S.INVALID_ARGUMENT and "unknown meter" in before.message
    assert (loaded.meters, loaded.accounts, loaded.tariffs) == (6, 3, 3)
    assert reply.deductions.num_rows > 0


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificates(folder: Path) -> None:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca",
             cwd=folder)
    for name, san in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"), ("client", "")):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
                 cwd=folder)
        ext = folder / f"{name}.ext"
        ext.write_text(san + "\n" if san else "basicConstraints=CA:FALSE\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", str(ext), cwd=folder)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls_and_mutual_tls(backends, site, tmp_path):
    _certificates(tmp_path)
    read = lambda name: (tmp_path / name).read_bytes()  # noqa: E731

    async def go():
        running = await started(backends, site, tls_cert=str(tmp_path / "server.pem"),
                                tls_key=str(tmp_path / "server.key"), tls_client_ca=str(tmp_path / "ca.pem"))
        target = f"localhost:{running.port}"
        async with AsyncRatingClient(target, tls=True, root_certificates=read("ca.pem"),
                                     client_cert=read("client.pem"), client_key=read("client.key")) as client:
            mutual = (await client.balance("F0002")).account_id
        ca = read("ca.pem")
        async with AsyncRatingClient(target, tls=True, root_certificates=ca, timeout_s=1) as client:
            try:
                await client.balance("F0002")
                without_cert = None
            except ClientError as exc:
                without_cert = exc.code
        async with AsyncRatingClient(target, timeout_s=1) as client:  # plaintext to a TLS port
            try:
                await client.balance("F0002")
                plaintext = None
            except ClientError as exc:
                plaintext = exc.code
        await running.stop(1)
        return mutual, without_cert, plaintext

    mutual, without_cert, plaintext = asyncio.run(go())
    assert mutual == "F0002"
    assert without_cert == S.UNAVAILABLE and plaintext == S.UNAVAILABLE


def test_a_call_past_its_deadline_is_refused_or_completes_once(backends, site):
    table = readings(6, 6)

    async def go():
        running = await started(backends, site)
        async with AsyncRatingClient(f"127.0.0.1:{running.port}") as client:
            try:
                await client.deduct("d", table, timeout_s=0.0005)
                first = S.OK
            except ClientError as exc:
                first = exc.code
            again = await client.deduct("d", table)
        ops = await counts(running)
        await running.stop(1)
        return first, again, ops

    first, again, ops = asyncio.run(go())
    assert first in (S.DEADLINE_EXCEEDED, S.OK)
    assert again.sequence == 1 and ops["ops"] == 1


def test_concurrent_duplicate_calls_over_grpc_have_one_effect(backends, site):
    table = readings(6, 6)

    async def go():
        running = await started(backends, site)
        target = f"127.0.0.1:{running.port}"
        clients = [AsyncRatingClient(target) for _ in range(4)]  # separate connections
        calls = [c.deduct("same-batch", table) for c in clients for _ in range(4)]
        calls += [c.topup("F0005", "water", 2_500, key="same-key", method="online") for c in clients
                  for _ in range(4)]
        results = await asyncio.gather(*calls)
        for c in clients:
            await c.close()
        ops = await counts(running)
        await running.stop(1)
        return results, ops

    results, ops = asyncio.run(go())
    deductions, topups = results[:16], results[16:]
    assert sum(not r.replayed for r in deductions) == 1 and sum(not t.replayed for t in topups) == 1
    assert len({r.sequence for r in deductions}) == 1 and len({t.balance_minor for t in topups}) == 1
    assert ops["ops"] == 2


def test_list_balances_filters_and_pages(backends, site):
    async def go():
        running = await started(backends, site)
        async with AsyncRatingClient(f"127.0.0.1:{running.port}") as client:
            await client.topup("F0000", "electricity", 50_000, key="t0")  # ok
            await client.topup("F0001", "electricity", 5_000, key="t1")  # low (below 100.00)
            await client.adjust("F0002", "electricity", -3_000, key="a2", reason="test")  # cut off
            await client.adjust("F0003", "water", -100, key="a3", reason="test")  # water cut off
            await client.topup("F0004", "electricity", 20_000, key="t4")  # ok

            async def listed(**kw):
                pages, token = [], ""
                while True:
                    reply = await client.prepaid.ListBalances(rating_pb2.ListBalancesRequest(page_token=token,
                                                                                            **kw))
                    pages.append([(a.account_id, [w.wallet for w in a.wallets]) for a in reply.accounts])
                    token = reply.next_page_token
                    if not token:
                        return pages

            below = await listed(wallet="electricity", below_threshold=True)
            cut = await listed(statuses=[rating_pb2.WALLET_STATUS_CUT_OFF])
            paged = await listed(page_size=2)
        await running.stop(1)
        return below, cut, paged

    below, cut, paged = asyncio.run(go())
    # F0003's and F0005's electricity were never funded: at 0.00, below 100.00
    assert below == [[(a, ["electricity"]) for a in ("F0001", "F0002", "F0003", "F0005")]]
    assert cut == [[("F0002", ["electricity"]), ("F0003", ["water"])]]
    assert [len(p) for p in paged] == [2, 2, 2]
    assert [a for page in paged for a, _ in page] == ["F0000", "F0001", "F0002", "F0003", "F0004", "F0005"]
    assert all(ws == ["electricity", "water"] for page in paged for _, ws in page)
