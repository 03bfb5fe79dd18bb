"""Prepaid refunds where the site asks for approval ([prepaid] refund_approval):
a request moves nothing, another person approves and only then the money
moves (never below 0, checked in the commit), on the embedded pair and on
Redis + PostgreSQL; without the setting a refund stays immediate."""

from __future__ import annotations

import asyncio

import pytest

from rating.errors import ConfigError, InputError
from rating.prepaid import errors
from rating.prepaid.records import Movement
from rating.prepaid.refund_approvals import REQUEST
from rating.prepaid.sitedocs import SiteDocs
from tests.prepaid_site import AFTERNOON, Clock, write_site

pytest_plugins = ["tests.prepaid_backends"]  # fixtures: backends, redis_server, postgres_server


def approving_site(folder, value: str = "true"):
    site = write_site(folder, flats=3)
    text = site.read_text(encoding="utf-8")
    site.write_text(text.replace("[prepaid]\n", f"[prepaid]\nrefund_approval = {value}\n"), encoding="utf-8")
    return site


def refund(key: str, amount_minor: int) -> Movement:
    return Movement("refund", key, "F0001", "electricity", amount_minor, "bank_transfer", "moved out")


async def started(backends, site):
    service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
    await service.start()
    await service.move(Movement("topup", "t1", "F0001", "electricity", 30_000, "cash", "counter"))
    return service


def electricity(wallets) -> int:
    return {s.wallet: s.balance_minor for s, _ in wallets}["electricity"]


def test_a_refund_moves_money_only_once_another_person_approves_it(backends, tmp_path):
    async def go():
        service = await started(backends, approving_site(tmp_path / "site"))
        asked = await service.request_refund(refund("rf-1", 12_000), requested_by="meena")
        again = await service.request_refund(refund("rf-1", 12_000), requested_by="meena")
        before = electricity(await service.balance("F0001"))
        with pytest.raises(InputError) as own:
            await service.decide_refund("rf-1", approve=True, decided_by="meena")
        approved = await service.decide_refund("rf-1", approve=True, decided_by="ravi")
        twice = await service.decide_refund("rf-1", approve=True, decided_by="ravi")
        with pytest.raises(InputError) as reject_after:
            await service.decide_refund("rf-1", approve=False, decided_by="ravi", reason="changed mind")
        after = electricity(await service.balance("F0001"))
        counts = await service.ledger.counts()
        await service.close()
        return asked, again, before, own.value, approved, twice, reject_after.value, after, counts

    asked, again, before, own, approved, twice, reject_after, after, counts = asyncio.run(go())
    assert (asked.status, asked.requested_by, asked.movement) == ("requested", "meena", None)
    assert not asked.replayed
    assert again.replayed and again.sequence == asked.sequence
    assert before == 30_000  # the request moved nothing
    assert own.reason == "PERMISSION_DENIED" and "another approver decides it" in str(own)
    assert (approved.status, approved.decided_by) == ("approved", "ravi")
    assert approved.movement.change_minor == -12_000 and approved.movement.balance_minor == 18_000
    assert twice.replayed and twice.movement.sequence == approved.movement.sequence
    assert reject_after.reason == "REFUND_DECIDED"
    assert after == 18_000
    assert counts["ops"] == 3 and counts["entries"] == 2  # top-up, request (no entry), the refund itself


def test_a_rejected_request_moves_nothing_and_cannot_be_approved_after(backends, tmp_path):
    async def go():
        service = await started(backends, approving_site(tmp_path / "site"))
        await service.request_refund(refund("rf-2", 5_000), requested_by="meena")
        with pytest.raises(errors.InvalidArgument):
            await service.decide_refund("rf-2", approve=False, decided_by="ravi", reason=" ")
        rejected = await service.decide_refund("rf-2", approve=False, decided_by="ravi", reason="no proof")
        with pytest.raises(InputError) as late:
            await service.decide_refund("rf-2", approve=True, decided_by="asha")
        state = await service.refunds.state("rf-2")
        balance = electricity(await service.balance("F0001"))
        await service.close()
        return rejected, late.value, state, balance

    rejected, late, state, balance = asyncio.run(go())
    assert (rejected.status, rejected.reason, rejected.decided_by) == ("rejected", "no proof", "ravi")
    assert late.reason == "REFUND_DECIDED" and state == rejected
    assert balance == 30_000


def test_hostile_requests_change_nothing(backends, tmp_path):
    async def go():
        service = await started(backends, approving_site(tmp_path / "site"))
        before = await service.ledger.counts()
        refused = {}
        for name, call in {
            "above the balance": service.request_refund(refund("rf-big", 30_001), requested_by="meena"),
            "nobody asks": service.request_refund(refund("rf-anon", 100), requested_by=""),
            "unknown account": service.request_refund(
                Movement("refund", "rf-x", "NOPE", "electricity", 100), requested_by="meena"),
            "not positive": service.request_refund(refund("rf-neg", -100), requested_by="meena"),
            "no request": service.decide_refund("never-asked", approve=True, decided_by="ravi"),
        }.items():
            with pytest.raises((errors.PrepaidError, InputError)) as caught:
                await call
            refused[name] = caught.value
        await service.request_refund(refund("rf-3", 100), requested_by="meena")
        with pytest.raises(errors.IdempotencyConflict):  # the key again, another amount
            await service.request_refund(refund("rf-3", 101), requested_by="meena")
        after = await service.ledger.counts()
        await service.close()
        return before, refused, after

    before, refused, after = asyncio.run(go())
    assert isinstance(refused["above the balance"], errors.InsufficientBalance)
    assert refused["above the balance"].metadata == {"balance_minor": "30000", "amount_minor": "30001"}
    assert isinstance(refused["nobody asks"], errors.InvalidArgument)
    assert isinstance(refused["unknown account"], errors.NotFound)
    assert isinstance(refused["not positive"], errors.InvalidArgument)
    assert refused["no request"].reason == "NOT_FOUND"
    assert after["ops"] == before["ops"] + 1 and after["entries"] == before["entries"]


def test_an_approval_above_the_balance_then_is_refused_inside_the_commit(backends, tmp_path):
    async def go():
        service = await started(backends, approving_site(tmp_path / "site"))
        await service.request_refund(refund("rf-4", 20_000), requested_by="meena")
        await service.move(Movement("refund", "spent", "F0001", "electricity", 15_000, "cash", "x"))
        with pytest.raises(errors.InsufficientBalance):
            await service.decide_refund("rf-4", approve=True, decided_by="ravi")
        state = await service.refunds.state("rf-4")
        balance = electricity(await service.balance("F0001"))
        await service.close()
        return state, balance

    state, balance = asyncio.run(go())
    assert state.status == "requested" and balance == 15_000


def test_a_request_left_unsettled_by_a_crash_is_settled_at_start(backends, tmp_path):
    site = approving_site(tmp_path / "site")

    async def go():
        service = await started(backends, site)
        ledger = service.ledger
        from rating.prepaid.ledger.base import NewOp
        from rating.prepaid.records import Entries

        told = b'{"movement": ["refund", "F0001", "electricity", 700, "cash", "", ""], ' \
               b'"requested_by": "meena"}'
        await ledger.commit(NewOp(REQUEST + "rf-crash", "refund_request", b"x" * 32, Entries.empty(),
                                  request=told))
        await service.close()
        service = backends.service(SiteDocs.from_site_file(site), clock=Clock(AFTERNOON))
        await service.start()
        pending = await service.ledger.pending()
        approved = await service.decide_refund("rf-crash", approve=True, decided_by="ravi")
        await service.close()
        return pending, approved

    pending, approved = asyncio.run(go())
    assert pending == [] and approved.movement.balance_minor == 30_000 - 700


def test_without_the_setting_a_refund_is_immediate_and_the_setting_is_checked(backends, tmp_path):
    async def go():
        service = await started(backends, write_site(tmp_path / "plain", flats=3))
        moved = await service.move(refund("rf-5", 1_000))
        await service.close()
        return moved, service.policy.refund_approval

    moved, approval = asyncio.run(go())
    assert moved.balance_minor == 29_000 and approval is False
    with pytest.raises(ConfigError, match="refund_approval"):
        SiteDocs.from_site_file(approving_site(tmp_path / "bad", '"yes"')).build()


GRPC_TOKENS = """tok-staff role=staff site="{site}" name=office
tok-meena role=approver site="{site}" name=meena
tok-ravi  role=approver site="{site}" name=ravi
"""


def test_over_grpc_an_approver_asks_another_approves_and_other_roles_are_denied(tmp_path):
    from rating.client.calls import RatingClient
    from tests.billing_server import SITE_NAME, failure, serving, settings, write_society

    site = write_society(tmp_path / "society")
    site.write_text(site.read_text(encoding="utf-8") + "\n[prepaid]\nrefund_approval = true\n",
                    encoding="utf-8")
    (tmp_path / "tokens").write_text(GRPC_TOKENS.format(site=SITE_NAME), encoding="utf-8")
    with serving(settings(site, tmp_path / "data", token_file=str(tmp_path / "tokens"))) as served:
        with RatingClient(served.target, token="tok-staff") as staff, \
                RatingClient(served.target, token="tok-meena") as meena, \
                RatingClient(served.target, token="tok-ravi") as ravi:
            staff.topup("A-0101", "maintenance", 50_000, key="top-1")
            asked = meena.refund("A-0101", "maintenance", 20_000, key="rf-g1", reason="moved out")
            before = served.counts()
            refused = {"by staff (role)": failure(lambda: staff.decide_wallet_refund("rf-g1", approve=True)),
                       "by staff (ask)": failure(lambda: staff.refund("A-0101", "maintenance", 1,
                                                                       key="rf-g2")),
                       "own": failure(lambda: meena.decide_wallet_refund("rf-g1", approve=True)),
                       "above": failure(lambda: meena.refund("A-0101", "maintenance", 50_001, key="rf-g3")),
                       "no reason": failure(lambda: ravi.decide_wallet_refund("rf-g1", approve=False))}
            unchanged = served.counts() == before
            approved = ravi.decide_wallet_refund("rf-g1", approve=True)
            again = meena.refund("A-0101", "maintenance", 20_000, key="rf-g1", reason="moved out")
    assert (asked.refund_status, asked.amount_minor, asked.balance_minor) == ("requested", 0, 50_000)
    assert asked.requested_by == "meena"
    assert unchanged
    codes = {name: (e.code.name, e.reason) for name, e in refused.items()}
    assert codes == {"by staff (role)": ("PERMISSION_DENIED", "PERMISSION_DENIED"),
                     "by staff (ask)": ("PERMISSION_DENIED", "PERMISSION_DENIED"),
                     "own": ("PERMISSION_DENIED", "PERMISSION_DENIED"),
                     "above": ("FAILED_PRECONDITION", "INSUFFICIENT_BALANCE"),
                     "no reason": ("INVALID_ARGUMENT", "BAD_VALUE")}
    assert (approved.refund_status, approved.amount_minor) == ("approved", -20_000)
    assert approved.balance_minor == 30_000
    assert (approved.requested_by, approved.decided_by) == ("meena", "ravi")
    assert again.replayed and again.refund_status == "approved"


def test_from_the_command_line_one_asks_and_another_decides(tmp_path, capsys):
    from rating.cli.commands import main
    from tests.billing_server import serving, settings, write_society

    site = write_society(tmp_path / "society")
    site.write_text(site.read_text(encoding="utf-8") + "\n[prepaid]\nrefund_approval = true\n",
                    encoding="utf-8")

    def cli(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    with serving(settings(site, tmp_path / "data")) as served:
        server = ["--server", served.target]
        assert cli("topup", "A-0101", "maintenance", "500.00", "--key", "t1", *server)[0] == 0
        asked = cli("refund", "A-0101", "maintenance", "200.00", "--key", "r1", "--actor", "meena", *server)
        sub_paisa = cli("refund", "A-0101", "maintenance", "2.005", "--key", "r2", "--actor", "meena",
                        *server)
        own = cli("decide-refund", "r1", "--approve", "--actor", "meena", *server)
        approved = cli("decide-refund", "r1", "--approve", "--actor", "ravi", *server)
        rejected_after = cli("decide-refund", "r1", "--reject", "--reason", "no", "--actor", "ravi", *server)
    assert asked[0] == 0 and "refund A-0101 maintenance 0.00: balance 500.00" in asked[1]
    assert "[refund r1: requested, asked by meena]" in asked[1]
    assert sub_paisa[0] == 2 and "more decimals than the currency's minor unit" in sub_paisa[2]
    assert own[0] != 0 and "another approver decides it" in own[2]
    assert approved[0] == 0 and "refund A-0101 maintenance -200.00: balance 300.00" in approved[1]
    assert "approved by ravi" in approved[1]
    assert rejected_after[0] != 0 and "REFUND_DECIDED" in rejected_after[2] + rejected_after[1]
