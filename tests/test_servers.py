"""The throwaway servers' rule: a test that needs Redis or PostgreSQL skips
when their binaries are missing, except under CI=true, where it fails."""

from __future__ import annotations

import pytest

from tests import servers


def test_missing_servers_skip_by_hand_and_fail_under_ci(monkeypatch):
    monkeypatch.setattr(servers, "redis_binary", lambda: None)
    assert servers.servers_missing(env={})
    assert servers.servers_missing(env={"CI": "false"})
    assert not servers.servers_missing(env={"CI": "true"})  # the test runs...
    with pytest.raises(RuntimeError, match="redis-server not found"):
        servers.RedisServer()  # ...and fails starting its server


def test_present_servers_never_skip(monkeypatch):
    monkeypatch.setattr(servers, "redis_binary", lambda: "/usr/bin/redis-server")
    monkeypatch.setattr(servers, "postgres_bin", lambda: "/usr/lib/postgresql/16/bin")
    assert not servers.servers_missing(env={}) and not servers.servers_missing(env={"CI": "true"})
