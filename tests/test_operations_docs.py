"""docs/operations.md lists every setting the server reads, under its
environment variable and `rating serve` flag, with its real default; and
every RATING_* variable the code reads is documented there."""

from __future__ import annotations

import argparse
import re
import tomllib
from dataclasses import fields
from pathlib import Path

from rating.cli.commands import build_parser
from rating.server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")


def settings_table() -> dict[str, tuple[str, str, str]]:
    """setting -> (environment, flag, default) from the table under ## Configuration."""
    section = DOC.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    row = r"^\| `([a-z_]+)` \| `([A-Z_]+)` \| (`--[a-z-]+`)? ?\| `([^`]*)` \|"
    rows = re.findall(row, section, re.MULTILINE)
    return {name: (env, flag.strip("`"), default) for name, env, flag, default in rows}


def serve_flags() -> dict[str, str]:
    """setting (the option's dest) -> its flag, for `rating serve`."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {action.dest: action.option_strings[0] for action in commands.choices["serve"]._actions
            if action.option_strings and action.dest not in ("help", "config")}


def test_every_setting_is_documented_with_its_variable_flag_and_default():
    table = settings_table()
    assert sorted(table) == sorted(f.name for f in fields(Settings))
    flags = serve_flags()
    for f in fields(Settings):
        env, flag, default = table[f.name]
        assert env == f"RATING_{f.name.upper()}"
        assert flag == flags.get(f.name, ""), f.name
        documented = tomllib.loads(f"value = {default}")["value"]
        actual = list(f.default) if isinstance(f.default, tuple) else f.default
        assert documented == actual and type(documented) is type(actual), f.name
    assert set(flags) <= set(table)  # no flag of `rating serve` sets something undocumented


def test_every_rating_variable_the_code_reads_is_documented():
    read, pattern = set(), re.compile(r"environ(?:\.get)?[(\[]\"(RATING_[A-Z_]+)\"")
    for path in (ROOT / "rating").rglob("*.py"):
        read |= set(pattern.findall(path.read_text(encoding="utf-8")))
    assert {"RATING_SERVER", "RATING_TOKEN"} <= read
    undocumented = sorted(name for name in read if f"`{name}`" not in DOC)
    assert undocumented == []
