"""Roles over a real server: each role makes the calls it may and every other
call ends PERMISSION_DENIED before its handler runs, so nothing changes; a
resident sees its own unit only, a token of another site nothing; plain
tokens stay admins; the token file's entries are checked, naming the entry
and never the token."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rating.client.billing import BillingClient
from rating.errors import ConfigError
from rating.server import roles
from rating.server.roles import Caller, Role
from rating.v1 import (
    billing_pb2,
    billing_pb2_grpc,
    notify_pb2,
    payments_pb2,
    rating_pb2,
    rating_pb2_grpc,
    usage_pb2,
)
from tests.billing_server import SITE_NAME, failure, serving, settings, write_society

S = grpc.StatusCode
TOKENS = f"""# one token a line: the token, then key=value words
plain-admin
tok-staff     role=staff     site="{SITE_NAME}" name=office
tok-approver  role=approver  site="{SITE_NAME}"
tok-resident  role=resident  site="{SITE_NAME}" unit=A-0101
tok-machine   role=machine   site="{SITE_NAME}" name=aggregator
tok-elsewhere role=staff     site="Elsewhere Towers"
"""
UNIT = "A-0101"
RANGE = (dt.date(2025, 4, 1), dt.date(2025, 6, 30))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("roles")
    site = write_society(folder / "society")
    (folder / "tokens").write_text(TOKENS, encoding="utf-8")
    with serving(settings(site, folder / "data", token_file=str(folder / "tokens"))) as served:
        yield served


def _calls(channel: grpc.Channel) -> dict:
    """One call of every method, each a request the handler refuses or answers
    without writing (what matters is whether the role lets it through)."""
    rating, prepaid = rating_pb2_grpc.RatingServiceStub(channel), rating_pb2_grpc.PrepaidServiceStub(channel)
    billing = billing_pb2_grpc.BillingServiceStub(channel)
    bad_move = rating_pb2.MovementRequest(idempotency_key="", account_id=UNIT, wallet="water", amount_minor=1)
    r, b = rating_pb2, billing_pb2
    return {
        "RateBatch": lambda: rating.RateBatch(r.RateBatchRequest()),
        "Deduct": lambda: prepaid.Deduct(r.DeductRequest(batch_id="x")),
        "StreamDeduct": lambda: list(prepaid.StreamDeduct(iter([r.DeductRequest(batch_id="x")]))),
        "GetAnomalies": lambda: prepaid.GetAnomalies(r.GetAnomaliesRequest(batch_id="none")),
        "TopUp": lambda: prepaid.TopUp(bad_move),
        "Refund": lambda: prepaid.Refund(bad_move),
        "Adjust": lambda: prepaid.Adjust(bad_move),
        "DecideRefund": lambda: prepaid.DecideRefund(r.DecideWalletRefundRequest()),
        "GetBalance": lambda: prepaid.GetBalance(r.GetBalanceRequest(account_id=UNIT)),
        "ListBalances": lambda: prepaid.ListBalances(r.ListBalancesRequest()),
        "WatchEvents": lambda: list(prepaid.WatchEvents(r.WatchEventsRequest(account_id=UNIT,
                                                                             stop_at_end=True))),
        "LoadConfig": lambda: prepaid.LoadConfig(r.LoadConfigRequest(site_toml="[site]\ntime_zone = 5")),
        "RunCycle": lambda: billing.RunCycle(b.CycleRequest(cycle="2025-13")),
        "IssueCycle": lambda: billing.IssueCycle(b.CycleRequest(cycle="2025-13")),
        "ImportDues": lambda: billing.ImportDues(b.ImportDuesRequest()),
        "GetBill": lambda: billing.GetBill(b.GetBillRequest(number="none", account_id=UNIT)),
        "ListBills": lambda: billing.ListBills(b.ListBillsRequest(account_id=UNIT)),
        "GetStatement": lambda: billing.GetStatement(b.StatementRequest(account_id=UNIT)),
        "RenderBill": lambda: billing.RenderBill(b.RenderBillRequest(number="none", account_id=UNIT)),
        "RenderStatement": lambda: billing.RenderStatement(b.StatementRequest(account_id=UNIT)),
    }


def _code(call) -> S:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return S.OK


def _channel(target: str, token: str | None) -> grpc.Channel:
    channel = grpc.insecure_channel(target)
    return channel if token is None else grpc.intercept_channel(channel, _Auth(token))


class _Auth(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
            grpc.StreamStreamClientInterceptor):
    """Adds the bearer token to every call (metadata, as the clients send it)."""

    def __init__(self, token: str):
        self.metadata = (("authorization", f"Bearer {token}"),)

    def _details(self, details):
        return details._replace(metadata=(*(details.metadata or ()), *self.metadata), timeout=30)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


EVERY = {"RateBatch", "Deduct", "StreamDeduct", "GetAnomalies", "TopUp", "Refund", "DecideRefund", "Adjust",
         "GetBalance",
         "ListBalances", "WatchEvents", "LoadConfig", "RunCycle", "IssueCycle", "ImportDues", "GetBill",
         "ListBills", "GetStatement", "RenderBill", "RenderStatement"}
READS = {"GetBill", "ListBills", "GetStatement", "RenderBill", "RenderStatement"}
# What each token may call, written out here as docs/api.md states it.
ALLOWED = {
    "plain-admin": EVERY,
    "tok-staff": {"RateBatch", "GetAnomalies", "TopUp", "GetBalance", "ListBalances", "WatchEvents",
                  "RunCycle", "IssueCycle", "ImportDues", *READS},
    "tok-approver": {"GetAnomalies", "Refund", "DecideRefund", "Adjust", "GetBalance", "ListBalances",
                     "WatchEvents",
                     "RunCycle", *READS},
    "tok-resident": {"GetBalance", "WatchEvents", *READS},
    "tok-machine": {"RateBatch", "Deduct", "StreamDeduct", "GetAnomalies", "TopUp", "GetBalance",
                    "ListBalances", "WatchEvents"},
    "tok-elsewhere": set(),
}


def test_each_role_makes_its_calls_and_every_other_is_denied_changing_nothing(served):
    before = served.counts()
    got = {}
    for token in ALLOWED:
        with _channel(served.target, token) as channel:
            got[token] = {name: _code(call) for name, call in _calls(channel).items()}
    assert served.counts() == before
    for token, allowed in ALLOWED.items():
        denied = {name for name, code in got[token].items() if code == S.PERMISSION_DENIED}
        assert denied == EVERY - allowed, token
        assert S.UNAUTHENTICATED not in got[token].values()
    with _channel(served.target, None) as anonymous, _channel(served.target, "tok-wrong") as wrong:
        assert {_code(c) for c in _calls(anonymous).values()} == {S.UNAUTHENTICATED}
        assert {_code(c) for c in _calls(wrong).values()} == {S.UNAUTHENTICATED}
        health = health_pb2_grpc.HealthStub(anonymous).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_a_resident_sees_its_own_unit_only_and_staff_act_under_their_name(served):
    with BillingClient(served.target, token="tok-staff") as staff:
        issued = staff.issue("2025-05", actor="Meena")
        first = staff.bill(issued.first_number)
    with BillingClient(served.target, token="tok-resident") as resident:
        own = resident.bill(first.number, account_id=UNIT)
        listed = [b.number for b in resident.bills(account_id=UNIT)]
        balance = resident.balance(UNIT)
        refused = {
            "another unit's bill": failure(lambda: resident.bill("B/25-26/000002", account_id="A-0102")),
            "another unit's list": failure(lambda: list(resident.bills(account_id="A-0102"))),
            "another unit's balance": failure(lambda: resident.balance("A-0102")),
            "another unit's events": failure(lambda: list(resident.events(account_id="A-0102"))),
            "another unit's statement": failure(lambda: resident.statement("A-0102", *RANGE)),
            "issue": failure(lambda: resident.issue("2025-06")),
        }
        hidden = failure(lambda: resident.bill("B/25-26/000002", account_id=UNIT))
        unnamed = [resident.bill(first.number).number, [b.number for b in resident.bills()],
                   resident.statement("", *RANGE).account_id]
        other_unnamed = failure(lambda: resident.bill("B/25-26/000002"))
    assert first.account_id == UNIT and first.actor == "Meena via office"
    assert own.number == first.number and listed == [first.number] and balance.account_id == UNIT
    assert {name: (e.code, e.reason) for name, e in refused.items()} == {
        name: (S.PERMISSION_DENIED, "PERMISSION_DENIED") for name in refused}
    assert refused["another unit's bill"].metadata == {"role": "resident",
                                                       "method": "/rating.v1.BillingService/GetBill"}
    assert "unit 'A-0101' may not see account_id 'A-0102'" in refused["another unit's bill"].message
    assert hidden.code == S.NOT_FOUND  # another unit's bill is not told apart from no bill
    assert unnamed == [first.number, [first.number], UNIT]  # naming no unit is naming its own
    assert other_unnamed.code == S.NOT_FOUND


def test_a_token_of_another_site_is_told_why(served):
    with BillingClient(served.target, token="tok-elsewhere") as elsewhere:
        error = failure(lambda: list(elsewhere.bills()))
    assert (error.code, error.reason) == (S.PERMISSION_DENIED, "PERMISSION_DENIED")
    assert error.message == f"the token is for site 'Elsewhere Towers'; this server serves site {SITE_NAME!r}"


def test_token_entries_name_a_role_site_and_unit_and_plain_ones_are_admins():
    found = roles.callers(["plain", "t2 role=resident site='Green Meadows' unit=A-1 name=\"Flat A-1\"",
                           "t3\trole=machine site=gm"])
    assert found["plain"].role is Role.ADMIN and found["plain"].site == ""
    assert found["plain"].name.startswith("admin token ") and "plain" not in found["plain"].name
    assert found["t2"] == Caller(Role.RESIDENT, "Green Meadows", "A-1", "Flat A-1")
    assert found["t3"].role is Role.MACHINE and found["t3"].site == "gm"


@pytest.mark.parametrize(("entry", "message"), [
    ("s3cret role=owner site=gm", "unknown role 'owner'"),
    ("s3cret role=staff", "a staff token names its site"),
    ("s3cret role=resident site=gm", "a resident token names its unit"),
    ("s3cret role=staff site=gm unit=A-1", "a resident token names its unit (unit=ACCOUNT), and only"),
    ("s3cret role staff", "expected key=value"),
    ("s3cret colour=blue", "expected key=value"),
    ("s3cret site='unclosed", "cannot read its key=value words"),
])
def test_a_bad_token_entry_names_the_entry_and_never_the_token(entry, message):
    with pytest.raises(ConfigError) as info:
        roles.callers(["fine", entry], where="tokens.txt")
    assert message in info.value.message and info.value.where == "tokens.txt entry 2"
    assert "s3cret" not in str(info.value)


def test_a_repeated_token_is_refused():
    with pytest.raises(ConfigError, match="the same token appears twice"):
        roles.callers(["same", "same role=staff site=gm"])


def test_the_role_table_names_real_methods():
    services = [rating_pb2.DESCRIPTOR.services_by_name[n] for n in ("RatingService", "PrepaidService")]
    services.append(billing_pb2.DESCRIPTOR.services_by_name["BillingService"])
    services.append(payments_pb2.DESCRIPTOR.services_by_name["PaymentsService"])
    services.append(notify_pb2.DESCRIPTOR.services_by_name["NotifyService"])
    services.append(usage_pb2.DESCRIPTOR.services_by_name["UsageService"])
    methods = {f"/{s.full_name}/{m.name}" for s in services for m in s.methods}
    listed = set(roles.METHODS) - {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}
    assert listed <= methods
    assert methods - listed == {"/rating.v1.PrepaidService/LoadConfig"}  # admins only
    for allowed, field in roles.METHODS.values():
        assert field in ("", "account_id") and (field == "" or Role.RESIDENT in allowed)


def test_the_cli_through_the_server_acts_with_its_token(served, monkeypatch, capsys, tmp_path):
    from rating.cli.commands import main

    token = tmp_path / "resident.token"
    token.write_text("tok-resident\n", encoding="utf-8")
    remote = ["--server", served.target]
    monkeypatch.setenv("RATING_TOKEN", "tok-staff")
    assert main(["bills", "issue", "--cycle", "2025-06", *remote]) == 0
    capsys.readouterr()
    code = main(["bills", "show", "--account", "A-0102", "--token-file", str(token), *remote])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("rating: error: PERMISSION_DENIED (PERMISSION_DENIED): a resident token of unit")
    code = main(["bills", "issue", "--cycle", "2025-07", "--token-file", str(token), *remote])
    _, err = capsys.readouterr()
    assert code == 2 and "a resident token may not call IssueCycle" in err
    monkeypatch.setenv("RATING_TOKEN", "tok-wrong")
    assert main(["bills", "show", "--account", UNIT, *remote]) == 2
    assert "UNAUTHENTICATED" in capsys.readouterr().err
