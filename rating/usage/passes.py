"""Monthly (or any length) parking passes: a subscription of an account to a
pass product from a start date runs in periods of the product's days; each
period is bought from the wallet by one `use` movement whose key names the
period, so a period is bought once however often renewal runs. A resident's
session whose exit falls in a bought period costs nothing.

Renewal (`plan_renewal`), on a day, per subscription: the period in force is
bought if it is not; the next one is bought `renew_days_before` its start;
from `warn_days_before` until then, a wallet that cannot pay it is warned."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rating.errors import InputError
from rating.inputs import cells
from rating.inputs.tables import read_table
from rating.usage.settings import PassProduct


@dataclass(frozen=True)
class Subscription:
    account_id: str
    product: PassProduct
    start: dt.date

    def period(self, day: dt.date) -> tuple[int, dt.date, dt.date]:
        """(number, first day, day after the last) of the period holding `day`."""
        number = (day - self.start).days // self.product.days
        first = self.start + dt.timedelta(days=number * self.product.days)
        return number, first, first + dt.timedelta(days=self.product.days)

    def key(self, first_day: dt.date) -> str:
        return f"pass:{self.account_id}:{self.product.name}:{first_day.isoformat()}"


@dataclass(frozen=True)
class RenewalStep:
    subscription: Subscription
    first_day: dt.date  # of the period to buy, or to warn about
    action: str  # "buy" or "warn_if_short"


def plan_renewal(subscriptions: list[Subscription], today: dt.date) -> list[RenewalStep]:
    steps = []
    for sub in subscriptions:
        if today < sub.start:
            continue
        _, first, following = sub.period(today)
        steps.append(RenewalStep(sub, first, "buy"))
        days_left = (following - today).days
        if days_left <= sub.product.renew_days_before:
            steps.append(RenewalStep(sub, following, "buy"))
        elif days_left <= sub.product.warn_days_before:
            steps.append(RenewalStep(sub, following, "warn_if_short"))
    return steps


def load_subscriptions(path, products: dict[str, PassProduct]) -> list[Subscription]:
    """A table of account_id, pass, start (ISO date); errors name the row and column."""
    where = str(path)
    table = read_table(path, strings=True)
    columns = {}
    for name in ("account_id", "pass", "start"):
        array = cells.text(table, name, where=where)
        if array is None:
            raise InputError(f"missing column {name!r} (needs account_id, pass, start)", where=where,
                             column=name)
        cells.present(array, where=where, name=name)
        columns[name] = array
    cells.one_of(columns["pass"], tuple(products), where=where, name="pass")
    subscriptions = []
    for row, (account, product, start) in enumerate(zip(*(columns[n].to_pylist() for n in columns),
                                                       strict=True)):
        try:
            day = dt.date.fromisoformat(start)
        except ValueError:
            raise cells.error_at(f"start must be a date (YYYY-MM-DD), got {start!r}", where, row,
                                 "start") from None
        subscriptions.append(Subscription(account, products[product], day))
    return subscriptions
