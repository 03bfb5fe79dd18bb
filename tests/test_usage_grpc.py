"""The UsageService over a real server (embedded backends) with roles: parking
events in as Arrow IPC, sessions and movements out; a use debited once per key
and refused when the wallet cannot pay; bad requests name their field; each
role makes the calls it may."""

from __future__ import annotations

import grpc
import pytest

from rating.prepaid.records import read_table_bytes, table_bytes
from rating.v1 import rating_pb2, rating_pb2_grpc, usage_pb2, usage_pb2_grpc
from tests.billing_server import serving, settings
from tests.test_roles import _channel, _code
from tests.usage_site import events, write_usage_site

S = grpc.StatusCode
TOKENS = """plain-admin
tok-staff     role=staff     site="Test Towers" name=office
tok-machine   role=machine   site="Test Towers" name=gate-camera
tok-resident  role=resident  site="Test Towers" unit=F0001
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("usage")
    site, usage = write_usage_site(folder / "site")
    usage.write_text(usage.read_text().replace('plates = "plates.csv"',
                                               'plates = "plates.csv"\nsubscriptions = "passes.csv"'))
    (folder / "site" / "passes.csv").write_text("account_id,pass,start\nF0003,monthly,2026-05-01\n")
    (folder / "tokens").write_text(TOKENS, encoding="utf-8")
    with serving(settings(site, folder / "data", token_file=str(folder / "tokens"))) as served:
        yield served


def _stubs(served, token):
    channel = _channel(served.target, token)
    return usage_pb2_grpc.UsageServiceStub(channel), rating_pb2_grpc.PrepaidServiceStub(channel)


def test_parking_events_over_grpc_debit_the_resident_and_record_the_visitor(served):
    usage, _ = _stubs(served, "tok-machine")
    batch = events(("KA05EF0002", "2026-05-04 08:00", "entry"), ("KA05EF0002", "2026-05-04 09:15", "exit"),
                   ("MH12XY0001", "2026-05-04 09:00", "entry"), ("MH12XY0001", "2026-05-04 09:10", "exit"),
                   ("NOPE", "2026-05-04 09:20", "exit"))
    reply = usage.Park(usage_pb2.ParkRequest(events=table_bytes(batch),
                                             visitor_method=rating_pb2.PAYMENT_METHOD_ONLINE), timeout=20)
    sessions = read_table_bytes(reply.sessions)
    assert (reply.events, sessions.num_rows, reply.amount_minor) == (5, 2, 2000 + 750)
    assert [(m.account_id, m.wallet, m.amount_minor) for m in reply.movements] == [
        ("F0002", "parking", -2000), ("GATE", "parking", 750)]
    assert read_table_bytes(reply.anomalies).column("code").to_pylist() == ["unknown_plate"]


@pytest.mark.parametrize(("events_bytes", "field"), [
    (b"", "events"), (b"not arrow", "events"),
    (table_bytes(events(("KA05EF0002", "2026-05-04 08:00", "parked"))), "column"),
])
def test_a_bad_parking_batch_is_refused_naming_where(served, events_bytes, field):
    usage, _ = _stubs(served, "tok-machine")
    with pytest.raises(grpc.RpcError) as caught:
        usage.Park(usage_pb2.ParkRequest(events=events_bytes), timeout=20)
    assert caught.value.code() == S.INVALID_ARGUMENT
    assert field in caught.value.details() or "event" in caught.value.details()


def test_a_use_over_grpc_is_debited_once_and_refused_when_the_wallet_cannot_pay(served):
    usage, prepaid = _stubs(served, "tok-staff")
    prepaid.TopUp(rating_pb2.MovementRequest(idempotency_key="G-T1", account_id="F0004", wallet="facilities",
                                             amount_minor=6000, method=rating_pb2.PAYMENT_METHOD_CASH),
                  timeout=20)
    ask = usage_pb2.UseRequest(idempotency_key="gym-1", account_id="F0004", facility="gym", source="qr",
                               reference="QR-77")
    first, again = usage.Use(ask, timeout=20), usage.Use(ask, timeout=20)
    assert (first.amount_minor, first.balance_minor, again.replayed) == (-5000, 1000, True)
    with pytest.raises(grpc.RpcError) as caught:
        usage.Use(usage_pb2.UseRequest(idempotency_key="gym-2", account_id="F0004", facility="gym"),
                  timeout=20)
    assert caught.value.code() == S.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as caught:
        usage.Use(usage_pb2.UseRequest(idempotency_key="ev-1", account_id="F0004", facility="ev",
                                       quantity="-3"), timeout=20)
    assert caught.value.code() == S.INVALID_ARGUMENT and "quantity" in caught.value.details()


def test_each_role_makes_its_usage_calls_and_no_other(served):
    calls = {
        "Park": lambda u: u.Park(usage_pb2.ParkRequest(events=table_bytes(events())), timeout=20),
        "Use": lambda u: u.Use(usage_pb2.UseRequest(idempotency_key="r-1", account_id="F9999",
                                                    facility="gym"), timeout=20),
        "RenewPasses": lambda u: u.RenewPasses(usage_pb2.RenewPassesRequest(on="2026-05-01"), timeout=20),
    }
    allowed = {"tok-machine": {"Park", "Use"}, "tok-staff": {"Use", "RenewPasses"}, "tok-resident": set()}
    for token, may in allowed.items():
        usage, _ = _stubs(served, token)
        for name, call in calls.items():
            code = _code(lambda call=call, usage=usage: call(usage))
            assert (code != S.PERMISSION_DENIED) == (name in may), (token, name, code)


def test_the_use_command_debits_once_per_key_and_says_why_it_refuses(served, tmp_path, capsys):
    from rating.cli.commands import main

    (tmp_path / "token").write_text("tok-staff\n", encoding="utf-8")
    _, prepaid = _stubs(served, "tok-staff")
    prepaid.TopUp(rating_pb2.MovementRequest(idempotency_key="C-T1", account_id="F0005", wallet="facilities",
                                             amount_minor=2000, method=rating_pb2.PAYMENT_METHOD_CASH),
                  timeout=20)
    command = ["use", "F0005", "ev", "1.5", "--key", "EV-1", "--source", "qr", "--server", served.target,
               "--token-file", str(tmp_path / "token"), "--timeout", "20"]
    assert main(command) == 0
    first = capsys.readouterr().out
    assert first.startswith("use F0005 facilities -18.75: balance 1.25 ")
    assert main(command) == 0
    assert capsys.readouterr().out.endswith("(already recorded: first result)\n")
    assert main([*command[:4], "--key", "EV-2", *command[6:]]) != 0
    assert "INSUFFICIENT_BALANCE" in capsys.readouterr().err


def test_the_server_renews_passes_by_itself_once_a_local_day(tmp_path):
    import datetime as dt
    import time

    site, usage = write_usage_site(tmp_path / "site")
    usage.write_text(usage.read_text().replace('plates = "plates.csv"',
                                               'plates = "plates.csv"\nsubscriptions = "passes.csv"'))
    start = dt.date.today() - dt.timedelta(days=3)
    (tmp_path / "site" / "passes.csv").write_text(f"account_id,pass,start\nF0003,monthly,{start}\n")
    with serving(settings(site, tmp_path / "data")) as first:  # its renewal found the wallet empty
        _, prepaid = _stubs(first, None)
        prepaid.TopUp(rating_pb2.MovementRequest(idempotency_key="A-T1", account_id="F0003", wallet="parking",
                                                 amount_minor=200000, method=rating_pb2.PAYMENT_METHOD_CASH),
                      timeout=20)
    with serving(settings(site, tmp_path / "data")) as again:  # a restart: renewal runs at start
        deadline = time.monotonic() + 20
        while again.running._renewed_on is None and time.monotonic() < deadline:
            time.sleep(0.05)
        _, prepaid = _stubs(again, None)
        wallets = prepaid.GetBalance(rating_pb2.GetBalanceRequest(account_id="F0003"), timeout=20).wallets
        again.run(again.running.renew_passes_today())  # the same day: nothing bought twice
        twice = prepaid.GetBalance(rating_pb2.GetBalanceRequest(account_id="F0003"), timeout=20).wallets
    assert [w.balance_minor for w in wallets if w.wallet == "parking"] == [50000]
    assert [w.balance_minor for w in twice if w.wallet == "parking"] == [50000]


def test_passes_renew_over_grpc_once_per_period(served):
    usage, prepaid = _stubs(served, "tok-staff")
    prepaid.TopUp(rating_pb2.MovementRequest(idempotency_key="P-T1", account_id="F0003", wallet="parking",
                                             amount_minor=200000, method=rating_pb2.PAYMENT_METHOD_CASH),
                  timeout=20)
    first = usage.RenewPasses(usage_pb2.RenewPassesRequest(on="2026-05-27"), timeout=20)
    renewals = [(r.account_id, getattr(r, "pass"), r.first_day, r.outcome, r.balance_minor)
                for r in first.renewals]
    assert renewals == [("F0003", "monthly", "2026-05-01", "bought", 50000),
                        ("F0003", "monthly", "2026-05-31", "warned", 50000)]
    again = usage.RenewPasses(usage_pb2.RenewPassesRequest(on="2026-05-27"), timeout=20)
    assert [r.outcome for r in again.renewals] == ["already_bought", "warned"]
    with pytest.raises(grpc.RpcError) as caught:
        usage.RenewPasses(usage_pb2.RenewPassesRequest(on="27/05/2026"), timeout=20)
    assert caught.value.code() == S.INVALID_ARGUMENT and "on must be a date" in caught.value.details()


def test_a_server_whose_usage_file_is_bad_does_not_start_and_says_where(tmp_path):
    from rating.errors import RatingError

    site, usage = write_usage_site(tmp_path / "site")
    usage.write_text(usage.read_text().replace("step_minutes = 60", "step_minutes = 61"))
    with pytest.raises(RatingError, match=r"usage.toml parking.tariffs.resident.step_minutes"):
        with serving(settings(site, tmp_path / "data")):
            pass


def test_the_docs_list_exactly_the_reasons_usage_adds_and_a_server_without_a_usage_file_sends_it(tmp_path):
    import re
    from pathlib import Path

    from rating.server import status
    from tests.prepaid_site import write_site

    text = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("\n## Errors of usage\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", section, re.MULTILINE)
    assert {r: set(re.findall(r"`([A-Z_]+)`", c)) for r, c in rows} == \
        {r: {c.name for c in codes} for r, codes in status.USAGE_REASONS.items()}
    assert not set(status.USAGE_REASONS) & (set(status.REASONS) | set(status.BILLING_REASONS))
    with serving(settings(write_site(tmp_path / "site"), tmp_path / "data")) as bare:
        usage, _ = _stubs(bare, None)
        with pytest.raises(grpc.RpcError) as caught:
            usage.Use(usage_pb2.UseRequest(idempotency_key="k", account_id="F0001", facility="gym"),
                      timeout=20)
    assert caught.value.code() == S.FAILED_PRECONDITION and "no usage file" in caught.value.details()
