"""Text inputs: UTF-8 decoding and TOML parsing, with errors that say where.

Every site and tariff file goes through `read_text` and `load_toml` (or `parse_toml` for
text that arrives decoded, as LoadConfig's documents do), so a file that is
not UTF-8 or not TOML is one clean error of the caller's class naming the
file, line and column, never a traceback.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

from rating.errors import RatingError

BOM = "\ufeff"


def decode_utf8(data: bytes, *, where: str, error: type[RatingError]) -> str:
    """`data` as text; bytes that are not UTF-8 raise `error` naming their
    line, column and value. A leading byte-order mark is dropped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8")
        line = good.count("\n") + 1
        column = exc.start - (good.rfind("\n") + 1 if "\n" in good else 0) + 1
        raise error(f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column {column}; "
                    "save the file as UTF-8", where=where, file=where, line=line) from None
    return text.removeprefix(BOM)


def read_text(path: Path, *, error: type[RatingError], what: str) -> str:
    """A UTF-8 text file's contents; `what` names it in errors ("site file")."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}", where=str(path), file=path) from None
    return decode_utf8(data, where=str(path), error=error)


def load_toml(path: Path, *, error: type[RatingError], what: str) -> dict:
    """Read and parse a TOML file."""
    return parse_toml(read_text(path, error=error, what=what), where=str(path), error=error)


def parse_toml(text: str, *, where: str, error: type[RatingError]) -> dict:
    """TOML text as a dict, numbers with a fraction as exact Decimals."""
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"not valid TOML: {exc}", where=where, file=where) from None
