"""What the server runs with, from (lowest first) defaults, a config file's
`[server]` table, `RATING_<NAME>` environment variables and command-line flags.

With nothing set, `rating serve` runs the embedded default: an in-process
balance store and an SQLite ledger in `./rating-data/`, on 127.0.0.1:50051,
without authentication. `redis_url` and `postgres_dsn` switch either backend
to the real one.

```toml
[server]
host = "0.0.0.0"
port = 50051
site = "site.toml"
redis_url = "redis://127.0.0.1:6379/0"
postgres_dsn = "postgresql://rating@127.0.0.1/rating"
anomaly_rows_max = 10000               # anomaly rows in a deduction answer; GetAnomalies pages the rest
token_file = "/etc/rating/tokens"      # one bearer token per line
tls_cert = "server.pem"
tls_key = "server.key"
tls_client_ca = "clients-ca.pem"       # set: clients must present a certificate (mutual TLS)
http_port = 8080                       # the HTTP listener (payment webhooks, orders); -1: none
webhook_secrets_file = "/etc/rating/webhooks.toml"
```

Names end in their unit (`message_bytes_max`, `ping_interval_min_s`); the
names some settings had before (`max_message_bytes`, `max_concurrent_rpcs`,
`stream_window`, `min_ping_interval_s`, `max_connection_idle_s`) still work
as keys, variables and flags (ALIASES).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path

from rating.errors import ConfigError
from rating.inputs.textfile import load_toml

MIB = 1 << 20


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 50051  # 0: any free port (see port_file)
    port_file: str = ""  # write the bound port here once serving
    site: str = ""  # site file; empty: the configuration last stored in the ledger
    data_dir: str = "rating-data"  # embedded default: the SQLite ledger lives here
    redis_url: str = ""
    postgres_dsn: str = ""
    postgres_schema: str = "rating"
    tokens: tuple[str, ...] = ()  # bearer tokens; none: no authentication (loopback use)
    token_file: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    message_bytes_max: int = 64 * MIB
    concurrent_rpcs_max: int = 1000
    batch_rows_max: int = 1_000_000
    anomaly_rows_max: int = 10_000  # anomaly rows in a deduction answer or a GetAnomalies page
    ops_pending_max: int = 4096  # operations admitted and not settled; more: RESOURCE_EXHAUSTED
    stream_window_batches: int = 8  # batches a stream may have unanswered
    keepalive_time_s: float = 60.0
    keepalive_timeout_s: float = 20.0
    ping_interval_min_s: float = 10.0
    connection_idle_max_s: float = 0.0  # 0: never close idle connections
    grace_s: float = 30.0  # how long shutdown waits for in-flight calls and streams
    apply_retry_s: float = 5.0  # how long an operation retries a down balance store after its commit
    rating_process: int = 1  # 1: rate deduction batches in a child process; 0: on a thread
    sweep_interval_s: float = 60.0  # how often deferred cut-offs are checked
    reminders_interval_s: float = 30.0  # the relay's pause between passes (a site with reminders.toml)
    http_port: int = -1  # the HTTP listener on `host` (webhooks, orders); -1: none; 0: any free port
    http_port_file: str = ""  # write the bound HTTP port here once serving
    webhook_secrets_file: str = ""  # the gateways' secrets (rating.web.secrets_file); re-read on change
    http_body_bytes_max: int = 1 * MIB  # larger request bodies are refused (413)
    log_format: str = "json"  # json | text
    log_level: str = "info"

    def all_tokens(self) -> tuple[str, ...]:
        tokens = list(self.tokens)
        if self.token_file:
            try:
                text = Path(self.token_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read token file: {exc.strerror}", where=self.token_file) from None
            tokens += [line.strip() for line in text.splitlines()
                       if line.strip() and not line.startswith("#")]
        return tuple(tokens)

    def check(self) -> Settings:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert and tls_key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise ConfigError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        if self.log_format not in ("json", "text"):
            raise ConfigError(f"log_format must be json or text, got {self.log_format!r}")
        if not -1 <= self.http_port <= 65535:
            raise ConfigError(f"http_port must be -1 (none), 0 (any free port) or a port, "
                              f"got {self.http_port}")
        for name in ("message_bytes_max", "concurrent_rpcs_max", "batch_rows_max", "anomaly_rows_max",
                     "ops_pending_max", "stream_window_batches", "http_body_bytes_max"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        return self


def _convert(name: str, kind, value):
    try:
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
        if kind == tuple[str, ...]:
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: cannot read {value!r} as {getattr(kind, '__name__', kind)}") from None


_TYPES: dict[str, object] = {
    f.name: {"int": int, "float": float, "str": str}.get(str(f.type), tuple[str, ...])
    for f in fields(Settings)
}


# The names these settings had before their units went last: still read as
# `[server]` keys, RATING_<NAME> variables and flags (docs/operations.md).
ALIASES: dict[str, str] = {
    "max_message_bytes": "message_bytes_max",
    "max_concurrent_rpcs": "concurrent_rpcs_max",
    "stream_window": "stream_window_batches",
    "min_ping_interval_s": "ping_interval_min_s",
    "max_connection_idle_s": "connection_idle_max_s",
}


def _named(values: dict, where: str) -> dict:
    """`values` under the settings' names: an old name (ALIASES) becomes its
    new one; both for one setting in one place is an error."""
    named: dict = {}
    for name, value in values.items():
        new = ALIASES.get(name, name)
        if new in named:
            old = name if new != name else next(o for o, n in ALIASES.items() if n == new)
            raise ConfigError(f"{new} is given twice, also by its old name {old}: give one", where=where)
        named[new] = value
    return named


_fields_init = Settings.__init__


@functools.wraps(_fields_init)
def _init_by_any_name(self: Settings, **values) -> None:
    """Settings(...) takes the old names (ALIASES) as keywords too."""
    _fields_init(self, **_named(values, "Settings"))


Settings.__init__ = _init_by_any_name  # type: ignore[method-assign,assignment]


_TOML_TYPE_NAMES: dict[object, str] = {int: "an integer", float: "a number", str: "a string"}


def _file_values(path: Path) -> dict:
    """The `[server]` table of a config file, each value of its setting's TOML type."""
    doc = load_toml(path, error=ConfigError, what="config file")
    table = doc.get("server", {})
    if not isinstance(table, dict):
        raise ConfigError("must be a table", where=f"{path}[server]")
    unknown = sorted(set(table) - set(_TYPES) - set(ALIASES))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}", where=f"{path}[server]")
    table = _named(table, f"{path}[server]")
    for name, value in table.items():
        kind = _TYPES[name]
        if kind is float:  # TOML floats are read as exact Decimals; an integer is a float too
            fits = isinstance(value, (int, Decimal)) and not isinstance(value, bool)
        elif kind is int:
            fits = isinstance(value, int) and not isinstance(value, bool)
        elif kind is str:
            fits = isinstance(value, str)
        else:
            fits = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not fits:
            wanted = _TOML_TYPE_NAMES.get(kind, "an array of strings")
            raise ConfigError(f"must be {wanted}, not {value!r}", where=f"{path}[server].{name}")
    return {name: _convert(name, _TYPES[name], value) for name, value in table.items()}


def load_settings(*, file: str | Path | None = None, env: dict[str, str] | None = None,
                  flags: dict | None = None) -> Settings:
    """Defaults < file's [server] table < RATING_* environment < flags (None: not given)."""
    values: dict = {}
    if file:
        values.update(_file_values(Path(file)))
    environment: Mapping[str, str] = os.environ if env is None else env
    given = {name: environment[f"RATING_{name.upper()}"] for name in [*_TYPES, *ALIASES]
             if environment.get(f"RATING_{name.upper()}")}
    for name, value in _named(given, "environment").items():
        values[name] = _convert(f"RATING_{name.upper()}", _TYPES[name], value)
    for name, value in _named({k: v for k, v in (flags or {}).items() if v is not None}, "flags").items():
        values[name] = _convert(name, _TYPES[name], value)
    return dataclasses.replace(Settings(), **values).check()
