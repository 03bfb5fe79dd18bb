"""kill -9 in the middle of issuing a cycle leaves nothing; issuing again
completes it exactly once (numbers from 1, no gap, every entry once)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.billing_drafts import MAY, SITE, batch, run
from tests.billing_issue_child import flats

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]  # postgres_server, make_ledger
ROOT = Path(__file__).resolve().parent.parent
FLATS = 3_000


def child_args(ledger) -> list[str]:
    if ledger.name == "sqlite":
        return ["sqlite", str(ledger.path), str(FLATS)]
    return ["postgres", ledger.dsn, ledger.schema, str(FLATS)]


def start_child(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.billing_issue_child", *args], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_kill9_mid_issue_leaves_nothing_and_issuing_again_completes_once(make_ledger):
    args = child_args(make_ledger())
    child = start_child([*args, "--pause"])
    try:
        assert child.stdout.readline().strip() == "in transaction"  # bills written, not committed
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    async def after_kill(ledger):
        return await ledger.counts()

    counts = run(make_ledger, after_kill)
    assert set(counts.values()) == {0}, counts  # nothing of the issue, not even its series

    finished = subprocess.run([sys.executable, "-m", "tests.billing_issue_child", *args], cwd=ROOT,
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              timeout=120)
    assert finished.stdout.split() == ["done", str(FLATS), "False"], finished.stderr

    async def again(ledger):
        replay = await ledger.issue(batch(flats(FLATS)))
        docs = await ledger.documents(SITE, limit=FLATS + 1)
        return replay, docs, await ledger.counts(), await ledger.balances(SITE)

    replay, docs, counts, balances = run(make_ledger, again)
    assert replay.replayed and replay.summary["last"] == f"B/25-26/{FLATS:06d}"
    assert [d.number for d in docs] == [f"B/25-26/{i:06d}" for i in range(1, FLATS + 1)]
    assert counts["dues_entries"] == 2 * FLATS and counts["dues_ops"] == 1 and counts["dues_cycles"] == 1
    assert sum(balances.values()) == sum(b.charges_minor for b in flats(FLATS))
    assert {d.cycle_id for d in docs} == {MAY.cycle_id}
