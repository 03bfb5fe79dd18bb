"""Throwaway redis-server and PostgreSQL for tests: free ports, temporary folders.

Never the machine's own servers: each is started here from the binaries, on a
port nobody uses, with its data in a temporary folder, and killed at the end.
`kill9()` kills a server the hard way (SIGKILL to its whole process group)
and `start()` brings it back on the same port and data, which is what the
durability tests need. Redis runs with AOF (`appendfsync everysec`);
PostgreSQL with `fsync=off` for speed: a killed process loses nothing that
reached the kernel, and these tests kill processes, not the machine.

When the binaries are missing, `redis_binary()`/`postgres_bin()` return None
and the tests that need them skip, except with CI=true, where they fail
(`./dev test` installs both with apt-get).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on port {port} after {timeout_s} s")


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the process that started it dies
    (Linux), so a killed test run leaves no server behind."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def postgres_bin() -> Path | None:
    """The folder holding initdb and postgres."""
    found = shutil.which("initdb")
    if found:
        folder = Path(found).resolve().parent  # /usr/local/bin/initdb may link into the real folder
        if (folder / "postgres").exists() and (folder / "pg_isready").exists():
            return folder
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(f"{folder}/initdb") and os.path.exists(f"{folder}/postgres"):
            return Path(folder)
    return None


class _Process:
    proc: subprocess.Popen | None = None

    def kill9(self) -> None:
        """SIGKILL the server and every process of its group; wait for them."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None
        time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill9()
        self.proc = None


class RedisServer(_Process):
    def __init__(self, folder: str | Path | None = None, *, appendfsync: str = "everysec",
                 options: tuple[str, ...] = ()):
        self.binary = redis_binary()
        if self.binary is None:
            raise RuntimeError("redis-server not found")
        self.folder = Path(folder or tempfile.mkdtemp(prefix="rating-redis-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendfsync = appendfsync
        self.options = options  # more redis-server flags (a cluster node's)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "",
                "--daemonize", "no", "--logfile", str(self.folder / "redis.log"),
                "--protected-mode", "no", *self.options]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        wait_port(self.port, proc=self.proc)
        return self

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class PostgresServer(_Process):
    """initdb into a temporary folder, then `postgres` on a free port (trust auth).

    PostgreSQL refuses to run as root; as root the server runs as the
    `postgres` user (or `nobody`), which then owns the folder (so a given
    folder must sit where that user can reach it: not under pytest's 0700
    tmp_path; the default, a new folder in /tmp, always works)."""

    def __init__(self, folder: str | Path | None = None):
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL binaries (initdb, postgres) not found")
        self.folder = Path(folder or tempfile.mkdtemp(prefix="rating-pg-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data = self.folder / "data"
        self.port = free_port()
        self.user = "rating"
        self._uid = self._gid = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    entry = pwd.getpwnam(name)
                except KeyError:
                    continue
                self._uid, self._gid = entry.pw_uid, entry.pw_gid
                break
            os.chown(self.folder, self._uid, self._gid)
            os.chmod(self.folder, 0o700)

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _demote(self):
        uid, gid = self._uid, self._gid

        def demote() -> None:
            if uid is not None:
                os.setgid(gid)
                os.setuid(uid)
            _die_with_parent()  # after setuid, which clears it
        return demote

    def start(self) -> PostgresServer:
        if not (self.data / "PG_VERSION").exists():
            subprocess.run(
                [str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
                 "-N", "-E", "UTF8", "--locale=C"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=self._demote(),
                cwd=self.folder,
            )
        args = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.folder}",
                "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=50",
                "-c", "shared_buffers=128MB", "-c", "max_wal_size=2GB"]
        log = open(self.folder / "postgres.log", "ab")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True,
                                     preexec_fn=self._demote(), cwd=self.folder)
        log.close()
        wait_port(self.port, proc=self.proc)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        """The port opens before recovery ends; wait until connections are accepted."""
        isready = self.bin / "pg_isready"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = subprocess.run([str(isready), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if done.returncode == 0:
                return
            time.sleep(0.05)
        raise TimeoutError("PostgreSQL did not become ready")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def servers_missing(env: dict[str, str] | None = None) -> bool:
    """Whether tests that need Redis or PostgreSQL skip: their binaries are
    absent, and CI is not set (under CI=true such a test runs and fails)."""
    ci = (os.environ if env is None else env).get("CI", "").lower() in ("1", "true", "yes")
    return not ci and (redis_binary() is None or postgres_bin() is None)


NEEDS_SERVERS = pytest.mark.skipif(
    servers_missing(), reason="redis-server or PostgreSQL binaries absent (./dev test installs them)")
