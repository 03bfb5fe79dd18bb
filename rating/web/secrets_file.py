"""Gateways' webhook secrets from a TOML file, re-read when it changes.

    # /etc/rating/webhooks.toml (readable by the server only)
    [razorpay]
    secrets = ["whsec_new_...", "whsec_old_..."]   # one, or two while changing it

A secret is rotated without a restart: add the new secret beside the old
one, let the gateway switch, then remove the old one. The server notices
the file's change within `check_interval_s`; a file that no longer reads
(a half-saved edit) is logged and the secrets read before stay in force.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from rating.errors import ConfigError
from rating.inputs.textfile import load_toml
from rating.payments.webhook import GatewaySecrets

log = logging.getLogger("rating.web")
CHECK_INTERVAL_S = 1.0


def parse_secrets(doc: dict, *, where: str) -> GatewaySecrets:
    secrets: dict[str, list[bytes]] = {}
    for gateway, table in doc.items():
        place = f"{where}[{gateway}]"
        if not isinstance(table, dict) or set(table) != {"secrets"}:
            raise ConfigError("a gateway is a table with one key, secrets", where=place)
        values = table["secrets"]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigError("secrets must be an array of strings", where=f"{place}.secrets")
        secrets[gateway] = [v.encode() for v in values]
    try:
        return GatewaySecrets(secrets)
    except ConfigError as exc:
        raise ConfigError(exc.message, where=where) from None


def load_secrets(path: Path) -> GatewaySecrets:
    return parse_secrets(load_toml(path, error=ConfigError, what="webhook secrets file"), where=str(path))


class SecretsFile:
    """The secrets of `path`, as of its last readable version."""

    def __init__(self, path: str | Path, *, check_interval_s: float = CHECK_INTERVAL_S) -> None:
        self.path = Path(path)
        self.check_interval_s = check_interval_s
        self._stamp = self._file_stamp()
        self._secrets = load_secrets(self.path)  # at start a broken file is an error
        self._checked_s = time.monotonic()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def current(self) -> GatewaySecrets:
        now_s = time.monotonic()
        if now_s - self._checked_s >= self.check_interval_s:
            self._checked_s = now_s
            stamp = self._file_stamp()
            if stamp != self._stamp:
                self._reload(stamp)
        return self._secrets

    def _reload(self, stamp: tuple[int, int, int] | None) -> None:
        self._stamp = stamp  # a broken version is logged once, not at every check
        try:
            self._secrets = load_secrets(self.path)
        except ConfigError as exc:
            log.error("webhook secrets not reloaded; the ones read before stay in force: %s", exc)
            return
        log.info("webhook secrets reloaded", extra={"fields": {"file": str(self.path)}})
