"""reminders.toml and its templates: the demo loads; a bad file or template is
refused when the site is loaded, naming the file and the line or key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rating.errors import ConfigError
from rating.model.site import Site
from rating.notify.rules import load_reminders
from rating.notify.templates import load_templates

DEMO = Path(__file__).resolve().parent.parent / "examples" / "reminders"
SITE = Site(name="Green Meadows", time_zone="Asia/Kolkata")


@pytest.fixture
def folder(tmp_path) -> Path:
    shutil.copytree(DEMO, tmp_path / "site")
    return tmp_path / "site"


def test_the_demo_site_loads_with_its_ladder_tones_and_three_languages(folder):
    rules = load_reminders(folder / "reminders.toml", SITE)
    assert [(s.name, s.stage) for s in rules.steps] == [
        ("d-7", "reminder"), ("d-1", "reminder"), ("d+0", "reminder"), ("d+1", "overdue"), ("d+7", "overdue"),
        ("d+30", "demand")]
    assert rules.step_on(-8) is None and rules.step_on(-3).name == "d-7" and rules.step_on(400).name == "d+30"
    assert rules.minimum_outstanding_minor == 10_000
    for language in ("en", "hi", "zh"):
        assert rules.templates.pick("reminder", "", language).language == language
    grateful = rules.templates.pick("reminder", "grateful", "en")
    assert grateful.name == "reminder.grateful" and "years_as_owner" in grateful.fields
    assert rules.templates.pick("reminder", "grateful", "hi").name == "reminder"  # language first


def test_a_template_renders_its_subject_and_text_and_refuses_a_missing_field(folder):
    template = load_templates(folder / "templates").by_stem("overdue.zh")
    values = {"unit": "A-101", "amount_due": "INR 2,500.00", "name": "李华", "due_date": "2025-06-15",
              "days_late": 3, "payment_link": "https://pay.example.org/x"}
    subject, text = template.render(values)
    assert subject == "逾期：A-101 欠费 INR 2,500.00" and "已逾期 3 天" in text
    with pytest.raises(Exception, match="days_late"):  # StrictUndefined: never an empty string
        template.render({k: v for k, v in values.items() if k != "days_late"})


@pytest.mark.parametrize(("text", "line", "message"), [
    ("Subject: x\nDear {{ name }},\n{{ nmae }} owes\n", 3, "unknown merge tag 'nmae'"),
    ("Subject: x\n\nDear {{ name }\n", 3, "template syntax error"),
    ("{% for l in breakdown %}{{ l.head }}{% endfor %}\n{{ secret.__class__ }}\n", 2,
     "unknown merge tag 'secret'"),
])
def test_a_bad_template_refuses_the_site_naming_file_and_line(folder, text, line, message):
    (folder / "templates" / "reminder.en.txt").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_reminders(folder / "reminders.toml", SITE)
    assert caught.value.where == f"{folder / 'templates' / 'reminder.en.txt'}:{line}"


def test_a_template_cannot_reach_python_internals(folder):
    (folder / "templates" / "reminder.en.txt").write_text("{{ name.__class__.__mro__ }}\n", encoding="utf-8")
    template = load_templates(folder / "templates").by_stem("reminder.en")
    with pytest.raises(Exception, match="unsafe|__class__|not safely"):
        template.render({"name": "x"})


@pytest.mark.parametrize(("change", "where", "message"), [
    (("days = -7", "days = -7000"), "[steps][0].days", "whole number"),
    (('stage = "reminder"\nchannels = ["sms"]', 'stage = "nudge"'), "[steps][1].stage", "no template"),
    (('channels = ["email"]', 'channels = ["fax"]'), "[steps][5].channels", "no channel 'fax'"),
    (('time_zone = "Asia/Kolkata"', 'time_zone = "Mars/Olympus"'), "[reminders].time_zone", "time zone"),
    (('quiet_hours = ["21:00", "08:00"]', 'quiet_hours = ["21:00"]'), "[reminders].quiet_hours",
     "from, until"),
    (('send_at = "10:00"', 'send_at = "25:00"'), "[reminders].send_at", "time of day"),
    (("daily_cap = 2", "daily_cap = 0"), "[reminders].daily_cap", "whole number"),
    (('kind = "webhook"', 'kind = "pigeon"'), "[channels].sms.kind", "kind must be"),
    (("[tones]", "[tone]"), "", "unknown key"),
    (('demand = "demand"', 'demand = "final_demand"'), "[stages].demand", "final_demand.en.txt"),
])
def test_a_bad_reminders_file_is_refused_naming_the_key(folder, change, where, message):
    path = folder / "reminders.toml"
    text = path.read_text(encoding="utf-8")
    assert change[0] in text
    path.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_reminders(path, SITE)
    assert caught.value.where == f"{path}{where}"


def test_a_template_file_named_otherwise_is_refused(folder):
    (folder / "templates" / "Reminder-final.txt").write_text("x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="<name>"):
        load_templates(folder / "templates")
