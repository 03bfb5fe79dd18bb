"""A site's message templates (Jinja2), checked when the site is loaded.

A template is a file `<name>[.<tone>].<language>.txt` in the site's
templates folder: `reminder.en.txt`, `reminder.empathetic.hi.txt`. A first
line `Subject: ...` is an email's subject; the rest is the text. Merge tags
are the names of FIELDS only: a tag outside them, or a syntax error, refuses
the whole folder, naming the file and line. Rendering is strict (an
undefined tag is an error, never an empty string) and sandboxed (a template
is data staff write, not code).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from rating.errors import ConfigError
from rating.inputs.textfile import read_text

FIELDS = {
    "name": "the resident's name as on the bill",
    "unit": "the unit (account) the bill is for",
    "bill_number": "the bill's number",
    "amount_due": "what is still owed, with the currency: 'INR 2,625.00'",
    "breakdown": "the bill's lines, each with .head and .amount",
    "due_date": "the bill's due date, 2025-06-15",
    "days_late": "days since the due date (0 before it)",
    "interest_so_far": "interest and late fees on the bill, with the currency",
    "payment_link": "where to pay",
    "language": "the resident's language code: en, hi, zh",
    "years_as_owner": "whole years since the account's first bill",
    "incentive": "the early-payment incentive offered, or '' (needs an opt-in)",
    "site_name": "the site's name",
    "amount_paid": "a payment notice: what was paid, with the currency",
    "wallet": "a prepaid alert: the wallet (electricity, water, ...)",
    "balance": "a prepaid alert: the wallet's balance after the event, with the currency",
    "level": "a prepaid alert: the warning level left or reached, with the currency ('' for a cut-off)",
}
ALERT_FIELDS = frozenset({"name", "unit", "wallet", "balance", "level", "payment_link", "site_name",
                          "language"})
DUES_FIELDS = frozenset(FIELDS) - {"wallet", "balance", "level"}  # the merge tags of a bill's notices
SUFFIX = ".txt"
SUBJECT = "Subject:"


@dataclass(frozen=True)
class Template:
    name: str  # <name>[.<tone>]
    language: str
    path: Path
    fields: frozenset[str]  # the merge tags it uses: what a stored message keeps
    compiled: jinja2.Template

    @cached_property
    def ordered_fields(self) -> tuple[str, ...]:
        return tuple(sorted(self.fields))

    @property
    def stem(self) -> str:
        """How a stored notice names it: `reminder.empathetic.hi`."""
        return f"{self.name}.{self.language}"

    def render(self, values: Mapping[str, object]) -> tuple[str, str]:
        """(subject, text) of the message."""
        text = self.compiled.render(values)
        first, _, rest = text.partition("\n")
        if first.startswith(SUBJECT):
            return first[len(SUBJECT):].strip(), rest.lstrip("\n")
        return "", text


class Templates:
    def __init__(self, templates: Mapping[tuple[str, str], Template]):
        self._templates = dict(templates)

    def __len__(self) -> int:
        return len(self._templates)

    def pick(self, name: str, tone: str, language: str, default_language: str = "en") -> Template | None:
        """The most specific template: tone and language, then language, then the same
        in the site's default language; None when there is none."""
        for lang in (language, default_language):
            for key in ((f"{name}.{tone}", lang), (name, lang)) if tone else ((name, lang),):
                found = self._templates.get(key)
                if found is not None:
                    return found
        return None

    def named(self, name: str) -> list[Template]:
        """Every template of a name, in any tone and language."""
        return [t for (n, _), t in self._templates.items() if n == name or n.startswith(f"{name}.")]

    def by_stem(self, stem: str) -> Template:
        """The template a stored notice names (`reminder.empathetic.hi`)."""
        name, _, language = stem.rpartition(".")
        found = self._templates.get((name, language))
        if found is None:
            raise KeyError(f"no template {stem}{SUFFIX}")
        return found



def load_templates(folder: str | Path) -> Templates:
    """Every template of the folder, checked; ConfigError naming file and line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError("templates folder not found", where=str(folder))
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    found: dict[tuple[str, str], Template] = {}
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        template = _load(env, path)
        found[(template.name, template.language)] = template
    if not found:
        raise ConfigError(f"no templates (*{SUFFIX}) in the folder", where=str(folder))
    return Templates(found)


def _load(env: SandboxedEnvironment, path: Path) -> Template:
    parts = path.name[:-len(SUFFIX)].split(".")
    if len(parts) not in (2, 3) or not all(p.isidentifier() for p in parts[:-1]) or not parts[-1].isalpha():
        raise ConfigError("a template is named <name>[.<tone>].<language>.txt (reminder.en.txt)",
                          where=str(path))
    source = read_text(path, error=ConfigError, what="template")
    try:
        tree = env.parse(source, name=path.name, filename=str(path))
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"template syntax error: {exc.message}", where=f"{path}:{exc.lineno}") from None
    used = meta.find_undeclared_variables(tree)
    unknown = sorted(used - set(FIELDS))
    if unknown:
        line = next(n.lineno for n in tree.find_all(nodes.Name) if n.name == unknown[0])
        raise ConfigError(f"unknown merge tag {unknown[0]!r}; known: {', '.join(sorted(FIELDS))}",
                          where=f"{path}:{line}")
    return Template(".".join(parts[:-1]), parts[-1], path, frozenset(used),
                    env.from_string(tree, globals={}))
