"""Who may call what: the role, site and unit a bearer token carries, and one
table of the calls each role may make (checked by rating.server.interceptors).

A token entry (a line of the token file, or one of `tokens`) is the token,
then optional `key=value` words:

    s3cret-admin
    k7-office   role=staff     site=green-meadows name=office
    k7-meena    role=approver  site=green-meadows name=meena
    k7-a0101    role=resident  site=green-meadows unit=A-0101
    k7-agg      role=machine   site=green-meadows name=aggregator-1
    k7-desk     role=staff     site="Green Meadows Co-operative Housing Society"

A value with spaces goes in double quotes, as a shell reads it. A token
without a role is an admin of every site: what every token was
before roles. Every other role names its site (the server's site name,
`[site].name`); a resident also names the unit (account) it may see. `name`
is who the token is in logs and on the ledger's rows (default: the role and
the first 8 hex digits of the token's SHA-256, never the token itself).
"""

from __future__ import annotations

import contextvars
import hashlib
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from rating.errors import ConfigError


class Role(StrEnum):
    ADMIN = "admin"  # everything, every site (a plain token)
    STAFF = "staff"  # the office: bill runs, dues imports, offline payments, reading balances
    APPROVER = "approver"  # committee members who approve money going out (refunds, corrections)
    RESIDENT = "resident"  # a unit's own bills, statements, balances and events
    MACHINE = "machine"  # meter aggregators and upstream systems: what they called before roles


STAFF, APPROVER, RESIDENT, MACHINE = Role.STAFF, Role.APPROVER, Role.RESIDENT, Role.MACHINE
_RATING, _PREPAID = "/rating.v1.RatingService/", "/rating.v1.PrepaidService/"
_BILLING, _PAYMENTS = "/rating.v1.BillingService/", "/rating.v1.PaymentsService/"
_NOTIFY = "/rating.v1.NotifyService/"
_USAGE = "/rating.v1.UsageService/"
_READERS = frozenset({STAFF, APPROVER})
_RESIDENT_READERS = frozenset({STAFF, APPROVER, RESIDENT})

# Every call a role other than admin may make, and the request field that
# names the account a resident's call concerns (it must be the token's unit).
# A method not listed here is for admins only.
METHODS: dict[str, tuple[frozenset[Role], str]] = {
    _RATING + "RateBatch": (frozenset({STAFF, MACHINE}), ""),
    _PREPAID + "Deduct": (frozenset({MACHINE}), ""),
    _PREPAID + "StreamDeduct": (frozenset({MACHINE}), ""),
    _PREPAID + "GetAnomalies": (frozenset({STAFF, APPROVER, MACHINE}), ""),
    _PREPAID + "TopUp": (frozenset({STAFF, MACHINE}), ""),
    _PREPAID + "Refund": (frozenset({APPROVER}), ""),
    _PREPAID + "DecideRefund": (frozenset({APPROVER}), ""),
    _PREPAID + "Adjust": (frozenset({APPROVER}), ""),
    _PREPAID + "GetBalance": (frozenset({STAFF, APPROVER, MACHINE, RESIDENT}), "account_id"),
    _PREPAID + "ListBalances": (frozenset({STAFF, APPROVER, MACHINE}), ""),
    _PREPAID + "WatchEvents": (frozenset({STAFF, APPROVER, MACHINE, RESIDENT}), "account_id"),
    _BILLING + "RunCycle": (_READERS, ""),
    _BILLING + "IssueCycle": (frozenset({STAFF}), ""),
    _BILLING + "ImportDues": (frozenset({STAFF}), ""),
    _BILLING + "GetBill": (_RESIDENT_READERS, "account_id"),
    _BILLING + "ListBills": (_RESIDENT_READERS, "account_id"),
    _BILLING + "GetStatement": (_RESIDENT_READERS, "account_id"),
    _BILLING + "RenderBill": (_RESIDENT_READERS, "account_id"),
    _BILLING + "RenderStatement": (_RESIDENT_READERS, "account_id"),
    _PAYMENTS + "RecordPayment": (frozenset({STAFF}), ""),
    _PAYMENTS + "ConfirmClaim": (frozenset({STAFF}), ""),
    _PAYMENTS + "RejectClaim": (frozenset({STAFF}), ""),
    _PAYMENTS + "Bounce": (frozenset({STAFF}), ""),
    _PAYMENTS + "Claim": (frozenset({RESIDENT}), "account_id"),
    _PAYMENTS + "RequestRefund": (_READERS, ""),
    _PAYMENTS + "DecideRefund": (frozenset({APPROVER}), ""),
    _PAYMENTS + "PayRefund": (frozenset({STAFF}), ""),
    _PAYMENTS + "ListPayments": (_RESIDENT_READERS, "account_id"),
    _PAYMENTS + "ListClaims": (_READERS, ""),
    _PAYMENTS + "ListRefunds": (_READERS, ""),
    _NOTIFY + "ListNotifications": (frozenset({STAFF, RESIDENT}), "account_id"),
    _NOTIFY + "PreviewNotifications": (frozenset({STAFF}), ""),
    _NOTIFY + "CancelNotification": (frozenset({STAFF}), ""),
    _NOTIFY + "ResendNotification": (frozenset({STAFF}), ""),
    _NOTIFY + "ListStaffTasks": (frozenset({STAFF}), ""),
    _PAYMENTS + "Allocate": (frozenset({STAFF}), ""),
    _PAYMENTS + "AssignSuspense": (frozenset({STAFF}), ""),
    _PAYMENTS + "Reconcile": (frozenset({STAFF}), ""),
    _PAYMENTS + "ListBankLines": (_READERS, ""),
    _PAYMENTS + "ResolveBankLine": (frozenset({STAFF}), ""),
    _PAYMENTS + "DismissBankLine": (frozenset({STAFF}), ""),
    _USAGE + "Park": (frozenset({MACHINE}), ""),
    _USAGE + "Use": (frozenset({STAFF, MACHINE}), ""),
    _USAGE + "RenewPasses": (frozenset({STAFF}), ""),
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": (frozenset(Role), ""),
}
_KEYS = ("role", "site", "unit", "name")


@dataclass(frozen=True)
class Caller:
    role: Role
    site: str = ""  # "": every site (admins only)
    unit: str = ""  # a resident's account
    name: str = ""


ANONYMOUS = Caller(Role.ADMIN)  # authentication off: every call allowed
CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("rating_caller", default=ANONYMOUS)


def callers(entries: Iterable[str], *, where: str = "tokens") -> dict[str, Caller]:
    """token -> Caller, from token entries; errors name the entry, never the token."""
    found: dict[str, Caller] = {}
    for n, entry in enumerate(entries, start=1):
        token, *more = entry.split(None, 1)
        place = f"{where} entry {n}"
        if token in found:
            raise ConfigError("the same token appears twice", where=place)
        try:
            words = shlex.split(more[0]) if more else []
        except ValueError as exc:
            raise ConfigError(f"cannot read its key=value words: {exc}", where=place) from None
        found[token] = _caller(token, words, place)
    return found


def _caller(token: str, words: list[str], where: str) -> Caller:
    values: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or key not in _KEYS or not value:
            raise ConfigError(f"expected key=value with a key of {', '.join(_KEYS)}, got {word!r}",
                              where=where)
        values[key] = value
    try:
        role = Role(values.get("role", Role.ADMIN))
    except ValueError:
        raise ConfigError(f"unknown role {values['role']!r}; the roles are {', '.join(Role)}",
                          where=where) from None
    if role is not Role.ADMIN and not values.get("site"):
        raise ConfigError(f"a {role} token names its site (site=NAME)", where=where)
    if (role is Role.RESIDENT) != bool(values.get("unit")):
        raise ConfigError("a resident token names its unit (unit=ACCOUNT), and only a resident's does",
                          where=where)
    name = values.get("name") or f"{role} token {hashlib.sha256(token.encode()).hexdigest()[:8]}"
    return Caller(role, values.get("site", ""), values.get("unit", ""), name)


def refusal(caller: Caller, method: str, site: str) -> str:
    """Why the caller may not make this call on the server of `site` ("": it may)."""
    if caller.site and caller.site != site:
        return f"the token is for site {caller.site!r}; this server serves site {site!r}"
    if caller.role is Role.ADMIN:
        return ""
    roles, _ = METHODS.get(method, (frozenset(), ""))
    if caller.role not in roles:
        return f"a {caller.role} token may not call {method.rsplit('/', 1)[-1]}"
    return ""


def scope_field(caller: Caller, method: str) -> str:
    """The request field that must name the caller's unit ("": none to check)."""
    if caller.role is not Role.RESIDENT:
        return ""
    return METHODS[method][1]
