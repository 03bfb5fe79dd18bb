"""Reading `reminders.toml`, the file beside the site file with the site's
reminder cadence, escalation ladder, tone, quiet hours, cap and channels.

Read once (`load_reminders`); every error names the file and key
(`reminders.toml[steps][2].days`), or a template's file and line, and
nothing is loaded. The format, with an example: docs/reminders.md.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rating.billing.config import (
    _flag,
    _keys,
    _names,
    _table_value,
    _text,
    _whole,
    amount_minor,
    decimal_value,
)
from rating.errors import ConfigError, InputError
from rating.inputs.textfile import load_toml
from rating.model.site import Site
from rating.notify.directory import check_address
from rating.notify.templates import ALERT_FIELDS, DUES_FIELDS, Templates, load_templates

REMINDERS_FILE = "reminders.toml"
STEP_DAYS_MAX = 366
CHANNEL_KINDS = ("smtp", "webhook")
_TOP = {"reminders", "steps", "stages", "tones", "channels", "incentive", "prepaid_alerts"}
# prepaid events a site may tell residents of (rating.prepaid.wallets.EVENT_WORDS), each by a template
ALERT_EVENTS = ("low_balance", "cut_off", "cut_off_deferred", "restored", "recovered")
_REMINDERS = {"time_zone", "language", "send_at", "quiet_hours", "daily_cap", "minimum_outstanding",
              "attempts_max", "payment_link", "templates", "on_issue", "on_payment", "suppress_tags"}
_STEP = {"days", "stage", "channels"}
_CHANNEL = {"smtp": {"kind", "host", "port", "sender", "starttls", "username", "timeout_s"},
            "webhook": {"kind", "url", "template_ids", "timeout_s"}}


@dataclass(frozen=True)
class Step:
    days: int  # from the due date: -7 is a week before, 0 the due date, 30 a month after
    stage: str  # a rung of the ladder: its template is `stages[stage]`
    channels: tuple[str, ...]
    label: str = ""  # a step outside the cadence (the "issued" notice) is named by its label

    @property
    def name(self) -> str:
        return self.label or f"d{self.days:+d}"


@dataclass(frozen=True)
class Incentive:
    percent: Decimal  # of the amount due, shown in the message, never posted by a reminder
    until_days: int  # offered on steps at most this many days before the due date


@dataclass(frozen=True)
class ReminderRules:
    steps: tuple[Step, ...]  # by days
    stages: Mapping[str, str]  # stage -> template name
    tones: tuple[tuple[str, str], ...]  # (owner tag, tone): the first tag the owner has wins
    channels: Mapping[str, Mapping]  # name -> checked settings (kind smtp | webhook)
    templates: Templates
    time_zone: str = "UTC"
    language: str = "en"
    send_at: dt.time = dt.time(10, 0)
    quiet_hours: tuple[dt.time, dt.time] | None = None  # (from, until) in the resident's zone
    daily_cap: int = 2
    minimum_outstanding_minor: int = 0
    attempts_max: int = 5
    payment_link: str = ""  # with {site}, {account}, {bill}
    on_issue: str = ""  # the template of the "bill issued" notice, "" for none
    on_payment: str = ""  # the template of the "payment received" notice, "" for none
    suppress_tags: frozenset[str] = frozenset({"autopay", "payment_plan"})  # no reminders for these
    incentive: Incentive | None = None
    # [prepaid_alerts]: prepaid event word -> template
    alerts: Mapping[str, str] = field(default_factory=dict)
    alert_channels: tuple[str, ...] = ()  # the channels prepaid alerts go by

    def step_on(self, days_from_due: int) -> Step | None:
        """The step in force that many days from the due date: the last one reached."""
        found = None
        for step in self.steps:
            if step.days <= days_from_due:
                found = step
        return found

    def kind(self, channel: str) -> str:
        return self.channels[channel]["kind"]


def reminders_path(site_file: str | Path) -> Path:
    return Path(site_file).parent / REMINDERS_FILE


def load_reminders(path: str | Path, site: Site) -> ReminderRules:
    path = Path(path)
    doc = load_toml(path, error=ConfigError, what="reminders file")
    where = str(path)
    _keys(doc, _TOP, where)
    top = _table_value(doc.get("reminders", {}), f"{where}[reminders]")
    _keys(top, _REMINDERS, f"{where}[reminders]")
    channels = _channels(doc.get("channels"), f"{where}[channels]")
    templates = load_templates(path.parent / _text(top.get("templates", "templates"),
                                                   f"{where}[reminders].templates"))
    stages = {k: _text(v, f"{where}[stages].{k}")
              for k, v in _table_value(doc.get("stages", {}), f"{where}[stages]").items()}
    steps = _steps(doc.get("steps"), stages, channels, f"{where}[steps]")
    rules = ReminderRules(
        steps=steps, stages=stages, channels=channels, templates=templates,
        tones=tuple((k, _text(v, f"{where}[tones].{k}"))
                    for k, v in _table_value(doc.get("tones", {}), f"{where}[tones]").items()),
        **_settings(top, site, f"{where}[reminders]"),
        incentive=_incentive(doc.get("incentive"), f"{where}[incentive]"),
        **_alerts(doc.get("prepaid_alerts"), channels, f"{where}[prepaid_alerts]"))
    _check_templates(rules, where)
    return rules


def _alerts(value: object, channels: dict, where: str) -> dict:
    """[prepaid_alerts]: a template per prepaid event told, and the channels (all unless it says)."""
    if value is None:
        return {}
    data = _table_value(value, where)
    _keys(data, {"channels", *ALERT_EVENTS}, where)
    names = _names(data.get("channels", list(channels)), f"{where}.channels", required=True)
    for name in names:
        if name not in channels:
            raise ConfigError(f"no channel {name!r} in [channels]", where=f"{where}.channels")
    alerts = {event: _text(data[event], f"{where}.{event}") for event in ALERT_EVENTS if event in data}
    if not alerts:
        raise ConfigError(f"names no event; any of {', '.join(ALERT_EVENTS)} = \"<template>\"", where=where)
    return {"alerts": MappingProxyType(alerts), "alert_channels": names}


def _settings(top: dict, site: Site, where: str) -> dict:
    zone = _text(top.get("time_zone", site.time_zone), f"{where}.time_zone")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {zone!r}", where=f"{where}.time_zone") from None
    quiet = top.get("quiet_hours")
    if quiet is not None:
        pair = _names(quiet, f"{where}.quiet_hours", required=True)
        if len(pair) != 2:
            raise ConfigError(f"must be [from, until], got {quiet!r}", where=f"{where}.quiet_hours")
        quiet = tuple(clock(t, f"{where}.quiet_hours") for t in pair)
    minimum = top.get("minimum_outstanding", 0)
    return dict(time_zone=zone, language=_text(top.get("language", "en"), f"{where}.language"),
                send_at=clock(top.get("send_at", "10:00"), f"{where}.send_at"), quiet_hours=quiet,
                daily_cap=_whole(top.get("daily_cap", 2), f"{where}.daily_cap", 1, 100),
                minimum_outstanding_minor=amount_minor(minimum, site, where=f"{where}.minimum_outstanding"),
                attempts_max=_whole(top.get("attempts_max", 5), f"{where}.attempts_max", 1, 50),
                payment_link=str(top.get("payment_link", "")), on_issue=str(top.get("on_issue", "")),
                on_payment=str(top.get("on_payment", "")),
                suppress_tags=frozenset(_names(top.get("suppress_tags", ["autopay", "payment_plan"]),
                                               f"{where}.suppress_tags")))


def clock(value: object, where: str) -> dt.time:
    try:
        return dt.time.fromisoformat(_text(value, where))
    except ValueError:
        raise ConfigError(f"must be a time of day, HH:MM, got {value!r}", where=where) from None


def _channels(value: object, where: str) -> dict[str, dict]:
    channels = {}
    for name, data in _table_value(value if value is not None else {}, where).items():
        at = f"{where}.{name}"
        data = _table_value(data, at)
        kind = data.get("kind")
        if kind not in CHANNEL_KINDS:
            raise ConfigError(f"kind must be one of {list(CHANNEL_KINDS)}, got {kind!r}", where=f"{at}.kind")
        _keys(data, _CHANNEL[kind], at)
        channels[name] = _smtp(data, at) if kind == "smtp" else _webhook(data, at)
    if not channels:
        raise ConfigError("names no channel ([channels.email] kind = \"smtp\", ...)", where=where)
    return channels


def _smtp(data: dict, at: str) -> dict:
    sender = _text(data.get("sender"), f"{at}.sender")
    try:
        check_address("smtp", sender)
    except InputError as exc:
        raise ConfigError(exc.message, where=f"{at}.sender") from None
    return {"kind": "smtp", "host": _text(data.get("host"), f"{at}.host"),
            "port": _whole(data.get("port", 25), f"{at}.port", 1, 65535), "sender": sender,
            "starttls": _flag(data.get("starttls", False), f"{at}.starttls"),
            "username": str(data.get("username", "")), "timeout_s": _timeout(data, at)}


def _webhook(data: dict, at: str) -> dict:
    url = _text(data.get("url"), f"{at}.url")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(f"must be an http(s):// URL, got {url!r}", where=f"{at}.url")
    ids = _table_value(data.get("template_ids", {}), f"{at}.template_ids")
    return {"kind": "webhook", "url": url, "timeout_s": _timeout(data, at),
            "template_ids": {k: _text(v, f"{at}.template_ids.{k}") for k, v in ids.items()}}


def _timeout(data: dict, at: str) -> float:
    return float(decimal_value(data.get("timeout_s", 10), where=f"{at}.timeout_s", maximum=Decimal(120)))


def _steps(value: object, stages: dict, channels: dict, where: str) -> tuple[Step, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError("must be an array of tables ([[steps]] days = -7, stage = \"reminder\")",
                          where=where)
    steps = []
    for i, data in enumerate(value):
        at = f"{where}[{i}]"
        data = _table_value(data, at)
        _keys(data, _STEP, at)
        stage = _text(data.get("stage"), f"{at}.stage")
        if stage not in stages:
            raise ConfigError(f"stage {stage!r} has no template in [stages]", where=f"{at}.stage")
        names = _names(data.get("channels", list(channels)), f"{at}.channels", required=True)
        for name in names:
            if name not in channels:
                raise ConfigError(f"no channel {name!r} in [channels]", where=f"{at}.channels")
        days = _whole(data.get("days"), f"{at}.days", -STEP_DAYS_MAX, STEP_DAYS_MAX)
        steps.append(Step(days, stage, names))
    if len({s.days for s in steps}) != len(steps):
        raise ConfigError("two steps on the same day", where=where)
    return tuple(sorted(steps, key=lambda s: s.days))


def _incentive(value: object, where: str) -> Incentive | None:
    if value is None:
        return None
    data = _table_value(value, where)
    _keys(data, {"percent", "until_days"}, where)
    return Incentive(decimal_value(data.get("percent"), where=f"{where}.percent", maximum=Decimal(100)),
                     _whole(data.get("until_days", 0), f"{where}.until_days", 0, STEP_DAYS_MAX))


def _check_templates(rules: ReminderRules, where: str) -> None:
    """Every stage (and the issue, payment and prepaid notices) has a template in the
    site's language, each using only the merge tags of its kind (a bill's, or an alert's)."""
    wanted = [(f"[stages].{stage}", name, DUES_FIELDS) for stage, name in rules.stages.items()]
    for key in ("on_issue", "on_payment"):
        if getattr(rules, key):
            wanted.append((f"[reminders].{key}", getattr(rules, key), DUES_FIELDS))
    wanted += [(f"[prepaid_alerts].{event}", name, ALERT_FIELDS) for event, name in rules.alerts.items()]
    for key, name, allowed in wanted:
        if rules.templates.pick(name, "", rules.language) is None:
            raise ConfigError(f"no template {name}.{rules.language}.txt", where=f"{where}{key}")
        for template in rules.templates.named(name):
            stray = sorted(template.fields - allowed)
            if stray:
                raise ConfigError(f"merge tag {stray[0]!r} is not one of this notice's ({where}{key}): "
                                  f"{', '.join(sorted(allowed))}", where=str(template.path))
