"""What a deduction answer says, on every backend pair: anomaly rows named
within their batch, wallet states in the docs' words, never-funded wallets
by the documented rule."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from rating.client.calls import AsyncRatingClient, ClientError
from rating.errors import InputError
from rating.prepaid.idempotency import readings_sha256
from rating.prepaid.records import Movement, table_bytes
from rating.prepaid.service import BalanceFilter
from rating.prepaid.sitedocs import SiteDocs
from rating.prepaid.wallets import STATUS_WORDS, Status
from rating.server import app
from rating.v1 import rating_pb2
from tests.prepaid_site import AFTERNOON, NIGHT, Clock, readings, write_site

pytest_plugins = ["tests.prepaid_backends"]  # fixtures: backends, redis_server, postgres_server
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture
def site(tmp_path):
    return write_site(tmp_path / "site", flats=6)


async def started(backends, site, **overrides):
    settings = backends.settings(site=str(site), **overrides)
    service = app.make_service(settings, clock=Clock(AFTERNOON))
    return await app.start(settings, service)


def test_anomaly_rows_are_rows_of_the_batch_sent_across_batches_and_a_restart(backends, site):
    table = readings(2, 3)  # 4 meters x 3 times, time-ordered
    first = table.slice(0, 8)
    again = pa.concat_tables([table.slice(8, 2), table.slice(3, 1), table.slice(10, 2)])  # row 2: old

    async def go():
        docs = SiteDocs.from_site_file(site)
        service = backends.service(docs, clock=Clock(AFTERNOON))
        await service.start()
        await service.deduct("b1", first)
        second = await service.deduct("b2", again)
        await service.close()
        service = backends.service(docs, clock=Clock(AFTERNOON))  # the same ledger, a new process
        await service.start()
        third = await service.deduct("b3", pa.concat_tables([table.slice(0, 1), table.slice(11, 1)]))
        replayed = await service.deduct("b2", again)
        await service.close()
        return second, third, replayed

    second, third, replayed = asyncio.run(go())
    assert second.anomalies.select(["row", "code"]).to_pylist() == [{"row": 2, "code": "out_of_order"}]
    assert third.anomalies.select(["row", "code"]).to_pylist() == [{"row": 0, "code": "out_of_order"},
                                                                   {"row": 1, "code": "duplicate"}]
    assert replayed.replayed and replayed.anomalies.equals(second.anomalies)


def _docs_words() -> dict[str, list[str]]:
    """The state words of the docs: api.md's deductions `status` row and its
    WalletStatus table, prepaid.md's state table."""
    api = (DOCS / "api.md").read_text(encoding="utf-8")
    prepaid = (DOCS / "prepaid.md").read_text(encoding="utf-8")
    status_row = re.search(r"^\| `status` \| string \| (.*) \|$", api, re.M)
    assert status_row is not None, "api.md lost the status row of the deductions table"
    return {
        "api.md deductions": re.findall(r"`([a-z_]+)`", status_row.group(1)),
        "api.md WalletStatus": [n.removeprefix("WALLET_STATUS_").lower()
                                for n in re.findall(r"^\| `(WALLET_STATUS_[A-Z_]+)` \|", api, re.M)],
        "prepaid.md": re.findall(r"^\| `([a-z_]+)` \| (?:at|below)", prepaid, re.M),
    }


def test_wallet_states_have_one_vocabulary_in_docs_proto_tables_and_service(backends, site):
    words = list(STATUS_WORDS[1:])
    for doc, found in _docs_words().items():
        assert found == words, doc
    proto = [n.removeprefix("WALLET_STATUS_").lower() for n in rating_pb2.WalletStatus.keys()][1:]
    assert proto == words and [int(s) for s in Status] == list(range(1, len(words) + 1))

    async def go():
        clock = Clock(NIGHT)  # cut-offs wait
        service = backends.service(SiteDocs.from_site_file(site), clock=clock)
        await service.start()
        await service.move(Movement("topup", "t0", "F0000", "electricity", 1_000_000, "cash"))
        await service.move(Movement("topup", "t1", "F0001", "electricity", 9_000, "cash"))  # low after
        await service.move(Movement("adjust", "a2", "F0002", "electricity", -1_999, "", "test"))
        await service.move(Movement("adjust", "a3", "F0003", "electricity", -5_000, "", "test"))
        clock.set(AFTERNOON)
        await service.sweep()  # F0003 cut off
        clock.set(NIGHT)
        result = await service.deduct("b1", readings(4, 12))
        await service.close()
        return {(r["account_id"], r["wallet"]): r["status"] for r in result.deductions.to_pylist()}

    states = asyncio.run(go())
    assert {states[(f"F000{i}", "electricity")] for i in range(4)} == set(words)


def test_a_wallet_never_funded_is_low_and_listed_below_its_threshold(backends, site):
    async def go():
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await service.start()
        await service.move(Movement("topup", "t0", "F0000", "electricity", 50_000, "cash"))
        await service.move(Movement("topup", "t1", "F0001", "water", 10_000, "cash"))
        wallets = {s.wallet: (s.balance_minor, s.status) for s, _ in await service.balance("F0005")}
        below, _ = await service.list_balances(BalanceFilter(wallet="electricity", below_threshold=True), 0)
        low, _ = await service.list_balances(BalanceFilter(statuses=(Status.LOW,)), 0)
        await service.close()
        return wallets, below, low

    wallets, below, low = asyncio.run(go())
    assert wallets == {"electricity": (0, Status.LOW), "water": (0, Status.LOW)}
    assert [a for a, _ in below] == ["F0001", "F0002", "F0003", "F0004", "F0005"]
    assert all(s.balance_minor == 0 and s.status == Status.LOW for _, ws in below for s, _ in ws)
    listed = {(a, s.wallet) for a, ws in low for s, _ in ws}
    assert ("F0000", "electricity") not in listed and ("F0000", "water") in listed
    assert ("F0001", "water") not in listed and ("F0001", "electricity") in listed
    assert len(listed) == 6 * 2 - 2


def _reencoded(table: pa.Table) -> bytes:
    """The same readings as another writer sends them: the file format, two
    chunks, compressed, the meter ids dictionary-encoded, ts in ns, values as decimals."""
    other = pa.table({
        "meter_id": pc.dictionary_encode(table.column("meter_id")),
        "ts": table.column("ts").cast(pa.timestamp("ns")),
        "value": table.column("value").cast(pa.decimal128(12, 3)),
    })
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_file(sink, other.schema, options=options) as writer:
        for chunk in other.to_batches(max_chunksize=max(other.num_rows // 2, 1)):
            writer.write_batch(chunk)
    return sink.getvalue().to_pybytes()


def test_a_batch_is_known_by_its_content_not_its_bytes(backends, site):
    table = readings(6, 4)
    changed = table.set_column(2, "value", pc.add(table.column("value"), 0.001))
    moved = pa.concat_tables([table.slice(1), table.slice(0, 1)])  # row order counts: answers name rows

    async def go():
        running = await started(backends, site)
        async with AsyncRatingClient(f"127.0.0.1:{running.port}") as client:
            first = await client.deduct("b1", table)
            again = await client.deduct("b1", _reencoded(table))
            refused = {}
            for name, other in (("value", changed), ("order", moved)):
                with pytest.raises(ClientError) as info:
                    await client.deduct("b1", other)
                refused[name] = info.value
        await running.stop(1)
        return first, again, refused

    first, again, refused = asyncio.run(go())
    assert len(_reencoded(table)) != len(table_bytes(table))
    assert again.replayed and again.sequence == first.sequence and again.deductions.equals(first.deductions)
    for error in refused.values():
        assert error.code == grpc.StatusCode.ALREADY_EXISTS and error.reason == "IDEMPOTENCY_CONFLICT"
        assert error.metadata["first_payload_sha256"] == readings_sha256(table, 3).hex()


def test_the_content_hash_is_canonical_and_vectorised():
    table = readings(3, 5)
    ids = table.column("meter_id")
    same = [
        pa.table({"meter_id": ids.cast(pa.large_string()), "ts": table["ts"].cast(pa.timestamp("us")),
                  "value": table["value"], "note": pa.array(["x"] * table.num_rows)}),
        pa.Table.from_batches(table.to_batches(max_chunksize=4)),
        pa.concat_tables([table.slice(0, 7), table.slice(7)]).combine_chunks().slice(0),
    ]
    digest = readings_sha256(table, 3)
    assert all(readings_sha256(t, 3) == digest for t in same)
    nulls = table.set_column(2, "value", pa.array([None] * table.num_rows, pa.float64()))
    zeros = table.set_column(2, "value", pa.array([0.0] * table.num_rows))
    with_ids = table.append_column("reading_id", pa.array(range(table.num_rows)))
    shifted = table.set_column(0, "meter_id", pa.array(["E-F0000E"] + ["-F0001"] + ids.to_pylist()[2:]))
    others = [nulls, zeros, with_ids, shifted, table.slice(1), table.slice(0, 14)]
    assert len({readings_sha256(t, 3) for t in others} | {digest}) == len(others) + 1
    assert readings_sha256(table, 2) != digest  # a value is its count of quantity units
    with pytest.raises(InputError, match="column value"):
        readings_sha256(table.set_column(2, "value", pa.array(["1"] * table.num_rows)), 3)


def _compressed(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as w:
        w.write_table(table.combine_chunks())
    return sink.getvalue().to_pybytes()


def test_an_answer_with_more_anomalies_than_a_message_holds_is_bounded_and_paged(backends, site):
    clean = readings(6, 2)  # 24 readings, then each of the last 12 again 1,000 times: duplicates
    batch = pa.concat_tables([clean] + [clean.slice(12)] * 1_000)
    limit = 64 * 1024

    async def go():
        running = await started(backends, site, message_bytes_max=limit, anomaly_rows_max=300)
        async with AsyncRatingClient(f"127.0.0.1:{running.port}", max_message_bytes=limit) as client:
            first = await client.deduct("dups", _compressed(batch))
            pages = [page async for page in client.anomaly_pages("dups")]
            rest = [page async for page in client.anomaly_pages("dups", first.anomalies_page_token)]
            replayed = await client.deduct("dups", _compressed(batch))
            errors = {}
            for name, (batch_id, token) in {"bad token": ("dups", "x"), "past the end": ("dups", "40"),
                                            "unknown batch": ("nope", "")}.items():
                with pytest.raises(ClientError) as info:
                    await anext(client.anomaly_pages(batch_id, token))
                errors[name] = info.value.code
        await running.stop(1)
        return first, pages, rest, replayed, errors

    first, pages, rest, replayed, errors = asyncio.run(go())
    assert len(_compressed(batch)) < limit < len(table_bytes(batch))
    assert first.anomalies.num_rows == 300 and first.anomalies_total == 12_000
    assert first.anomaly_counts == {"duplicate": 12_000} and first.anomalies_page_token
    assert [p.num_rows for p in pages] == [300] * 40 and pages[0].equals(first.anomalies)
    rows = pa.concat_tables(pages).column("row").to_pylist()
    assert rows == list(range(24, 24 + 12_000))  # every anomaly row once, in row order
    assert pa.concat_tables(rest).equals(pa.concat_tables(pages[1:]))
    assert replayed.replayed and replayed.anomalies.equals(first.anomalies)
    assert (replayed.anomalies_total, replayed.anomaly_counts, replayed.anomalies_page_token) == (
        first.anomalies_total, first.anomaly_counts, first.anomalies_page_token)
    assert errors == {"bad token": grpc.StatusCode.INVALID_ARGUMENT,
                      "past the end": grpc.StatusCode.INVALID_ARGUMENT,
                      "unknown batch": grpc.StatusCode.NOT_FOUND}
