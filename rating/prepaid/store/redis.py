"""Redis balance store: atomic Lua scripts, one call per shard per operation,
all of an operation's calls in one pipelined round trip.

Keys (every key of an account carries its shard tag, rating.prepaid.store.shards):
- `{s17}:bal:<account>`  hash: `<wallet>` balance in minor units, `<wallet>:s`
  state (absent: OK);
- `{s17}:deferred`       set of `<balance key>|<wallet>` waiting for a cut-off;
- `{s17}:op:<seq>`       the shard's result of operation `seq`, which makes a
  repeated call return the first result and change nothing (expires after
  `marker_ttl_s`; forgotten once the ledger has settled the operation);
- `{s17}:mark`           hash: `epoch` of the ledger the store mirrors, `seq`
  the last sequence applied on the shard. Every script checks the epoch
  before anything else (and changes nothing when it differs: an emptied
  or replaced Redis); the reads check it in the same round trip.

The script runs `rating.prepaid.wallets.transition` in Lua; the contract
tests hold it to the Python rules. Lua numbers are doubles: balances and
amounts are exact up to 2^53 - 1 minor units, which the ledger enforces
before each commit and the script checks again before it writes.
"""

from __future__ import annotations

import asyncio
import hashlib
import operator
from collections.abc import AsyncIterator
from dataclasses import replace

import numpy as np
import redis.asyncio as aioredis
from redis import exceptions as rexc

from rating.prepaid.records import Applied, Entries, Event, WalletState
from rating.prepaid.store.base import BalanceStore, Overrides, StoreMismatch, StoreUnavailable, past_the_limit
from rating.prepaid.store.shards import SHARDS, shard_of, tag
from rating.prepaid.wallets import BALANCE_LIMIT_MINOR, EventType, Status, WalletPolicy

# ARGV[2] policies follow, numbered from 1: wallet name, low balance, emergency credit,
# restore level, cut off, friendly now. A wallet's own policy comes first; accounts'
# own policies for the same wallet follow it. byname: a wallet's own policy number.
_POLICIES = """
local pol, names, byname = {}, {}, {}
local a = 3
for k = 1, tonumber(ARGV[2]) do
  names[k] = ARGV[a]
  pol[k] = {tonumber(ARGV[a + 1]), -tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]),
            ARGV[a + 4] == '1', ARGV[a + 5] == '1'}
  if byname[ARGV[a]] == nil then byname[ARGV[a]] = k end
  a = a + 6
end
"""

# transition(policy, s, b, friendly) -> ns, appending "n:event" to ev (mirrors wallets.transition)
_TRANSITION = """
local function transition(p, s, b, friendly, n, ev)
  local low, below, restore, cut = p[1], p[2], p[3], p[4]
  if cut and b < below then
    if s == 1 or s == 2 then
      if s == 1 then ev[#ev + 1] = n .. ':1' end
      if friendly then ev[#ev + 1] = n .. ':3'; return 3 end
      ev[#ev + 1] = n .. ':2'
      return 4
    end
    if s == 3 and not friendly then ev[#ev + 1] = n .. ':2'; return 4 end
    return s
  end
  local settled = 1
  if b < low then settled = 2 end
  if s == 4 then
    if b >= restore then ev[#ev + 1] = n .. ':4'; return settled end
    return s
  end
  if s == 3 then ev[#ev + 1] = n .. ':4'; return settled end
  if settled == 2 and s == 1 then ev[#ev + 1] = n .. ':1' end
  return settled
end

local function set_state(key, w, s, ns, deferred)
  if ns == s then return end
  if ns == 1 then redis.call('HDEL', key, w .. ':s') else redis.call('HSET', key, w .. ':s', ns) end
  if ns == 3 then redis.call('SADD', deferred, key .. '|' .. w)
  elseif s == 3 then redis.call('SREM', deferred, key .. '|' .. w) end
end
"""

# The bound epoch must be the shard's; ARGV[e] epoch, ARGV[e + 1] the operation's sequence.
_MARK = """
local found = redis.call('HGET', KEYS[3], 'epoch')
if found ~= ARGV[e] then return redis.error_reply('RATING_MARK ' .. (found or '')) end
local done = redis.call('GET', KEYS[1])
if done then return done end
"""
_MARK_SEQ = """
if tonumber(ARGV[e + 1]) > tonumber(redis.call('HGET', KEYS[3], 'seq') or '0') then
  redis.call('HSET', KEYS[3], 'seq', ARGV[e + 1])
end
"""

# KEYS: result, deferred set, mark, balance hashes. ARGV: ttl, P, P x policy, then two binary strings,
# one item per balance hash: its policy's number (one byte, from 1; it names the wallet) and the delta
# (8 bytes, little-endian int64), then epoch and sequence. Returns, per item, the balance (8 bytes)
# and the state (1 byte), then per event its item (4 bytes, from 1) and type (1 byte). Binary
# both ways: nothing to format or parse per item on the client. A balance that would pass
# +-LIMIT is refused first, with nothing written: "RATING_LIMIT <balance key>|<wallet> <balance>".
APPLY_LUA = f"""
local LIMIT = {BALANCE_LIMIT_MINOR}
""" + _POLICIES + _TRANSITION + """
local wallets, deltas, e = ARGV[a], ARGV[a + 1], a + 2
""" + _MARK + """
local after = {}
for i = 4, #KEYS do  -- every balance within the limit, or nothing written
  local n = i - 3
  local id = KEYS[i] .. '|' .. names[string.byte(wallets, n)]
  local b = (after[id] or tonumber(redis.call('HGET', KEYS[i], names[string.byte(wallets, n)]) or '0'))
            + struct.unpack('<i8', deltas, n * 8 - 7)
  if b > LIMIT or b < -LIMIT then
    return redis.error_reply('RATING_LIMIT ' .. id .. ' ' .. string.format('%.0f', b))
  end
  after[id] = b
end
local out, ev, evbin = {}, {}, {}
for i = 4, #KEYS do
  local n = i - 3
  local k = string.byte(wallets, n)
  local key, w, p = KEYS[i], names[k], pol[k]
  local delta = struct.unpack('<i8', deltas, n * 8 - 7)
  local b = redis.call('HINCRBY', key, w, string.format('%d', delta))
  local s = tonumber(redis.call('HGET', key, w .. ':s') or '1')
  local before = #ev
  local ns = transition(p, s, b, p[5], n, ev)
  set_state(key, w, s, ns, KEYS[2])
  for e = before + 1, #ev do
    evbin[#evbin + 1] = struct.pack('<i4', n) .. string.char(tonumber(string.match(ev[e], ':(%d+)$')))
  end
  out[n] = struct.pack('<i8', b) .. string.char(ns)
end
local result = table.concat(out) .. table.concat(evbin)
redis.call('SET', KEYS[1], result, 'EX', ARGV[1])
""" + _MARK_SEQ + """
return result
"""

# KEYS: result, deferred set, mark. ARGV: ttl, P, P x policy, M, M x (deferred member, policy
# number) for the accounts' own policies, epoch, sequence. Cuts off deferred wallets of wallets not
# in friendly hours. Returns "member|balance:state" lines, ";", "line:event,...".
SWEEP_LUA = _POLICIES + _TRANSITION + """
local own = {}
for i = 1, tonumber(ARGV[a]) do own[ARGV[a + 2 * i - 1]] = tonumber(ARGV[a + 2 * i]) end
local e = a + 1 + 2 * tonumber(ARGV[a])
""" + _MARK + """
local out, ev = {}, {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local key, w = string.match(m, '^(.*)|([^|]*)$')
  local p = pol[own[m] or byname[w] or 0]
  if p and not p[5] then
    local b = tonumber(redis.call('HGET', key, w) or '0')
    local s = tonumber(redis.call('HGET', key, w .. ':s') or '1')
    local ns = transition(p, s, b, false, #out + 1, ev)
    set_state(key, w, s, ns, KEYS[2])
    out[#out + 1] = m .. '|' .. string.format('%d:%d', b, ns)
  end
end
local result = table.concat(out, '\\n') .. ';' .. table.concat(ev, ',')
redis.call('SET', KEYS[1], result, 'EX', ARGV[1])
""" + _MARK_SEQ + """
return result
"""

_DOWN = (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError, OSError)
_first = operator.itemgetter(0)
_ITEM = np.dtype([("balance", "<i8"), ("state", "u1")])
_EVENT = np.dtype([("item", "<i4"), ("type", "u1")])


def _bulk(data: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(data), data)


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


class RedisStore(BalanceStore):
    name = "redis"

    def __init__(self, url: str, *, marker_ttl_s: int = 7 * 86400, timeout_s: float = 5.0):
        self.url = url
        self.marker_ttl_s = marker_ttl_s
        self.timeout_s = timeout_s
        self.redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                             retry_on_timeout=False)
        self._scripts = {"apply": (APPLY_LUA, _sha(APPLY_LUA)), "sweep": (SWEEP_LUA, _sha(SWEEP_LUA))}
        self._shards_of_op: dict[int, list[int]] = {}
        # account -> (shard, balance key, the key as a RESP bulk string)
        self._keys: dict[str, tuple[int, bytes, bytes]] = {}

    def _key(self, account_id: str) -> tuple[int, bytes, bytes]:
        known = self._keys.get(account_id)
        if known is None:
            shard = shard_of(account_id)
            key = f"{tag(shard)}:bal:{account_id}".encode()
            known = self._keys[account_id] = (shard, key, _bulk(key))
        return known

    def _shard(self, account_id: str) -> int:
        return self._key(account_id)[0]

    @staticmethod
    def _policy_args(policies: dict[str, WalletPolicy], friendly: dict[str, bool],
                     overrides: Overrides | None) -> tuple[list, dict[str, int], dict[tuple[str, str], int]]:
        """The scripts' policy arguments, with the number of each wallet's own
        policy and of each account's own one (distinct policies numbered once)."""
        numbered: dict[WalletPolicy, int] = {}
        wallet_number: dict[str, int] = {}
        for name, p in policies.items():
            wallet_number[name] = numbered.setdefault(replace(p, name=name), len(numbered) + 1)
        own_number = {pair: numbered.setdefault(p, len(numbered) + 1)
                      for pair, p in (overrides or {}).items()}
        if len(numbered) > 255:
            raise ValueError("at most 255 distinct wallet policies per operation")
        args: list = [len(numbered)]
        for p in numbered:  # in number order
            args += [p.name, p.low_balance_minor, p.emergency_credit_minor, p.restore_above_minor,
                     int(p.cut_off), int(friendly.get(p.name, True))]
        return args, wallet_number, own_number

    async def _run_shards(self, script: str, calls: dict[int, tuple[list, list]]) -> dict[int, bytes]:
        """EVALSHA one script per shard in one pipeline; reload it if Redis lost it."""
        source, sha = self._scripts[script]
        results: dict[int, bytes] = {}
        todo = dict(calls)
        for _attempt in range(2):
            pipe = self.redis.pipeline(transaction=False)
            order = list(todo)
            for shard in order:
                keys, args = todo[shard]
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            try:
                replies = await pipe.execute(raise_on_error=False)
            except _DOWN as exc:
                raise StoreUnavailable(f"redis {self.url}: {exc}") from exc
            missing = {}
            for shard, reply in zip(order, replies, strict=True):
                if isinstance(reply, rexc.NoScriptError):
                    missing[shard] = todo[shard]
                elif isinstance(reply, _DOWN):
                    raise StoreUnavailable(f"redis {self.url}: {reply}")
                elif isinstance(reply, Exception):
                    raise self._refusal(reply)
                else:
                    results[shard] = reply
            if not missing:
                return results
            try:
                await self.redis.script_load(source)
            except _DOWN as exc:
                raise StoreUnavailable(f"redis {self.url}: {exc}") from exc
            todo = missing  # the calls that failed changed nothing: run them again
        raise StoreUnavailable(f"redis {self.url}: script {script} could not be loaded")

    async def apply(self, seq: int, entries: Entries, policies: dict[str, WalletPolicy],
                    friendly: dict[str, bool], overrides: Overrides | None = None) -> Applied:
        n = len(entries)
        if n == 0:
            return Applied(np.zeros(0, np.int64), np.ones(0, np.int8), [])
        policy_args, number, own_number = self._policy_args(policies, friendly, overrides)
        found = list(map(self._keys.get, entries.account_ids))  # C-level loop; misses computed once
        known: list[tuple[int, bytes, bytes]] = (
            [k if k is not None else self._key(a) for k, a in zip(found, entries.account_ids, strict=True)]
            if None in found else found)  # type: ignore[assignment]
        shards = np.fromiter(map(_first, known), dtype=np.int64, count=n)
        order = np.argsort(shards, kind="stable")  # entries grouped by shard, in entry order within
        starts = np.concatenate([[0], np.flatnonzero(np.diff(shards[order])) + 1, [n]]).tolist()
        codes = [number[w] for w in entries.wallets]
        if own_number:  # accounts with a policy of their own
            pairs = zip(entries.account_ids, entries.wallets, strict=True)
            codes = [own_number.get(pair, code) for pair, code in zip(pairs, codes, strict=True)]
        wallets = np.array(codes, dtype=np.uint8)[order].tobytes()
        deltas = np.ascontiguousarray(entries.amounts_minor, dtype="<i8")[order].tobytes()
        frags = [known[i][2] for i in order.tolist()]
        head = b"".join(_bulk(str(v).encode()) for v in [self.marker_ttl_s, *policy_args])
        tail = _bulk(self._epoch_bytes()) + _bulk(b"%d" % seq)
        prefix = _bulk(b"EVALSHA") + _bulk(self._scripts["apply"][1].encode())
        fixed_args = 3 + 3 + (1 + len(policy_args)) + 2 + 2  # command, sha, numkeys; keys; head; blobs; tail
        shard_list, commands = [], []
        for lo, hi in zip(starts, starts[1:], strict=False):
            shard = int(shards[order[lo]])
            shard_list.append(shard)
            t = tag(shard).encode()
            count = hi - lo
            commands.append(b"*%d\r\n%b%b" % (fixed_args + count, prefix, _bulk(b"%d" % (count + 3)))
                            + _bulk(b"%b:op:%d" % (t, seq)) + _bulk(b"%b:deferred" % t)
                            + _bulk(b"%b:mark" % t)
                            + b"".join(frags[lo:hi]) + head + _bulk(wallets[lo:hi])
                            + _bulk(deltas[lo * 8:hi * 8]) + tail)
        self._shards_of_op[seq] = shard_list
        replies = await self._raw(commands)
        cells = np.empty(n, dtype=_ITEM)  # in shard order, like `order`
        tagged: list[tuple[int, int, EventType]] = []
        for lo, hi, reply in zip(starts, starts[1:], replies, strict=False):
            cells[lo:hi] = np.frombuffer(reply, dtype=_ITEM, count=hi - lo)
            for item, kind in np.frombuffer(reply, dtype=_EVENT, offset=(hi - lo) * _ITEM.itemsize).tolist():
                tagged.append((int(order[lo + item - 1]), len(tagged), EventType(kind)))
        balances = np.empty(n, dtype=np.int64)
        statuses = np.empty(n, dtype=np.int8)
        balances[order] = cells["balance"]
        statuses[order] = cells["state"]
        tagged.sort()  # entry order, as the in-process store emits them
        events = [Event(kind, entries.account_ids[i], entries.wallets[i], int(balances[i]))
                  for i, _, kind in tagged]
        return Applied(balances, statuses, events)

    async def _raw(self, commands: list[bytes], *, reload: bool = True) -> list[bytes]:
        """Send EVALSHA commands packed by hand in one write and read every
        reply (redis-py's pipeline packs each argument in Python: too slow
        for thousands of keys a batch). A lost script is loaded and the calls
        that failed are sent again: a failed call changed nothing."""
        pool = self.redis.connection_pool
        try:
            conn = await pool.get_connection()
        except _DOWN as exc:
            raise StoreUnavailable(f"redis {self.url}: {exc}") from exc
        try:
            await conn.send_packed_command(b"".join(commands), check_health=False)
            async with asyncio.timeout(self.timeout_s):
                replies = await _read_replies(conn, len(commands))
        except (*_DOWN, asyncio.IncompleteReadError) as exc:
            await conn.disconnect()
            raise StoreUnavailable(f"redis {self.url}: {exc}") from exc
        finally:
            await pool.release(conn)
        for reply in replies:
            if isinstance(reply, Exception) and not isinstance(reply, rexc.NoScriptError):
                raise self._refusal(reply)
        missing = [i for i, r in enumerate(replies) if isinstance(r, rexc.NoScriptError)]
        if not missing:
            return replies
        if not reload:
            raise StoreUnavailable(f"redis {self.url}: the apply script could not be loaded")
        try:
            await self.redis.script_load(self._scripts["apply"][0])
        except _DOWN as exc:
            raise StoreUnavailable(f"redis {self.url}: {exc}") from exc
        again = await self._raw([commands[i] for i in missing], reload=False)
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
        return replies

    def _epoch_bytes(self) -> bytes:
        if self.epoch is None:
            raise StoreMismatch("the Redis store is not bound to a ledger", foreign=False)
        return self.epoch.encode()

    def _refusal(self, reply: Exception) -> Exception:
        """A script's own refusal as the store's error (it changed nothing); other errors as they are."""
        text = str(reply)
        if text.startswith("RATING_LIMIT "):
            where, balance = text.removeprefix("RATING_LIMIT ").rsplit(" ", 1)
            key, wallet = where.rsplit("|", 1)
            return past_the_limit(key.split(":bal:", 1)[1], wallet, int(balance))
        if text.startswith("RATING_MARK"):
            return self._mismatch(text.removeprefix("RATING_MARK").strip() or None)
        return reply

    def _mismatch(self, found: str | None) -> StoreMismatch:
        if found is None:
            return StoreMismatch(f"redis {self.url} has no marker of this ledger (emptied or replaced): "
                                 "its balances are rebuilt from the ledger", foreign=False)
        return StoreMismatch(f"redis {self.url} mirrors another ledger (epoch {found}, this ledger's is "
                             f"{self.epoch}): refused until `rating rebuild`", foreign=True)

    async def _check_marks(self) -> None:
        """Every shard's marker names the bound epoch (unbound: unchecked)."""
        if self.epoch is None:
            return
        for found in await self._marks("epoch"):
            if found != self.epoch:
                raise self._mismatch(found)

    async def _marks(self, field: str) -> list[str | None]:
        pipe = self.redis.pipeline(transaction=False)
        for shard in range(SHARDS):
            pipe.hget(f"{tag(shard)}:mark", field)
        try:
            return [None if v is None else v.decode() for v in await pipe.execute()]
        except _DOWN as exc:
            raise StoreUnavailable(f"redis {self.url}: {exc}") from exc

    async def marker_state(self, ledger_seq: int) -> str:
        epochs, seqs = await self._marks("epoch"), await self._marks("seq")
        if any(e is not None and e != self.epoch for e in epochs):
            return "foreign"
        if None in epochs:
            return "missing"
        return "ahead" if max(int(s or 0) for s in seqs) > ledger_seq else "ok"

    async def sweep(self, seq: int, policies: dict[str, WalletPolicy],
                    friendly: dict[str, bool], overrides: Overrides | None = None
                    ) -> tuple[list[WalletState], Applied]:
        policy_args, _, own_number = self._policy_args(policies, friendly, overrides)
        own: dict[int, list] = {s: [] for s in range(SHARDS)}  # per shard: deferred member, policy number
        for (account, wallet), number in own_number.items():
            shard, balance_key, _ = self._key(account)
            own[shard] += [balance_key + b"|" + wallet.encode(), number]
        epoch = self._epoch_bytes()
        calls = {s: ([f"{tag(s)}:op:{seq}", f"{tag(s)}:deferred", f"{tag(s)}:mark"],
                     [self.marker_ttl_s, *policy_args, len(own[s]) // 2, *own[s], epoch, seq])
                 for s in range(SHARDS)}
        self._shards_of_op[seq] = list(range(SHARDS))
        replies = await self._run_shards("sweep", calls)
        changed, events = [], []
        for shard in range(SHARDS):
            lines, _, kinds = replies[shard].decode().partition(";")
            local = []
            for line in filter(None, lines.split("\n")):
                key, wallet, cell = line.rsplit("|", 2)
                b, s = cell.split(":")
                local.append(WalletState(key.split(":bal:", 1)[1], wallet, int(b), Status(int(s))))
            for item in filter(None, kinds.split(",")):
                k, kind = item.split(":")
                state = local[int(k) - 1]
                events.append(Event(EventType(int(kind)), state.account_id, state.wallet,
                                    state.balance_minor))
            changed += local
        applied = Applied(np.array([c.balance_minor for c in changed], dtype=np.int64),
                          np.array([c.status for c in changed], dtype=np.int8), events)
        return changed, applied

    async def deferred_count(self) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for shard in range(SHARDS):
            pipe.scard(f"{tag(shard)}:deferred")
        try:
            return sum(await pipe.execute())
        except _DOWN as exc:
            raise StoreUnavailable(f"redis {self.url}: {exc}") from exc

    async def wallets(self, account_id: str) -> list[WalletState]:
        shard = self._shard(account_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(f"{tag(shard)}:mark", "epoch")
        pipe.hgetall(f"{tag(shard)}:bal:{account_id}")
        try:
            found, fields = await pipe.execute()
        except _DOWN as exc:
            raise StoreUnavailable(f"redis {self.url}: {exc}") from exc
        if self.epoch is not None and (found is None or found.decode() != self.epoch):
            raise self._mismatch(None if found is None else found.decode())
        return _states(account_id, fields)

    async def scan(self, page_size: int = 1000) -> AsyncIterator[list[WalletState]]:
        await self._check_marks()
        try:
            cursor = 0
            while True:
                cursor, keys = await self.redis.scan(cursor, match="{s*}:bal:*", count=page_size)
                if keys:
                    pipe = self.redis.pipeline(transaction=False)
                    for key in keys:
                        pipe.hgetall(key)
                    page = []
                    for key, fields in zip(keys, await pipe.execute(), strict=True):
                        name = key.decode() if isinstance(key, bytes) else key
                        page += _states(name.split(":bal:", 1)[1], fields)
                    yield page
                if cursor == 0:
                    return
        except _DOWN as exc:
            raise StoreUnavailable(f"redis {self.url}: {exc}") from exc

    async def replace_all(self, states: list[WalletState], *, seq: int = 0) -> None:
        epoch = self._epoch_bytes()
        try:
            cursor = 0
            while True:
                cursor, keys = await self.redis.scan(cursor, match="{s*}:*", count=1000)
                if keys:
                    await self.redis.unlink(*keys)
                if cursor == 0:
                    break
            pipe = self.redis.pipeline(transaction=False)
            for i, s in enumerate(states):
                key = self._key(s.account_id)[1]
                mapping: dict = {s.wallet: s.balance_minor}
                if s.status != Status.OK:
                    mapping[f"{s.wallet}:s"] = int(s.status)
                pipe.hset(key, mapping=mapping)
                if s.status == Status.CUT_OFF_DEFERRED:  # the scripts' member: "<balance key>|<wallet>"
                    pipe.sadd(f"{tag(self._shard(s.account_id))}:deferred", key + b"|" + s.wallet.encode())
                if i % 1000 == 999:
                    await pipe.execute()
            for shard in range(SHARDS):  # last: a rebuild cut short leaves no marker
                pipe.hset(f"{tag(shard)}:mark", mapping={"epoch": epoch, "seq": seq})
            await pipe.execute()
        except _DOWN as exc:
            raise StoreUnavailable(f"redis {self.url}: {exc}") from exc
        self._shards_of_op.clear()

    async def forget(self, seqs: list[int]) -> None:
        keys = []
        for seq in seqs:
            shards = self._shards_of_op.pop(seq, range(SHARDS))
            keys += [f"{tag(s)}:op:{seq}" for s in shards]
        if keys:
            try:
                await self.redis.unlink(*keys)
            except _DOWN as exc:
                raise StoreUnavailable(f"redis {self.url}: {exc}") from exc

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except _DOWN as exc:
            raise StoreUnavailable(f"redis {self.url}: {exc}") from exc

    async def close(self) -> None:
        await self.redis.aclose()


async def _read_replies(conn, count: int) -> list:
    """`count` replies (bulk strings, or errors as exceptions). Straight from the
    connection's stream when redis-py uses its pure-Python parser, which keeps
    nothing buffered between replies: parsing 64 replies through it costs more
    than the scripts they answer."""
    reader, parser = getattr(conn, "_reader", None), getattr(conn, "_parser", None)
    buffered = getattr(parser, "_buffer", None)
    if reader is None or type(parser).__name__ not in _PLAIN_PARSERS or buffered:
        replies: list = []
        for _ in range(count):
            try:
                replies.append(await conn.read_response(disable_decoding=True))
            except rexc.ResponseError as exc:
                replies.append(exc)
        return replies
    replies = []
    for _ in range(count):
        line = await reader.readuntil(b"\r\n")
        kind = line[:1]
        if kind == b"$":
            size = int(line[1:-2])
            replies.append(None if size < 0 else (await reader.readexactly(size + 2))[:-2])
        elif kind == b"-":
            text = line[1:-2].decode(errors="replace")
            error = rexc.NoScriptError if text.startswith("NOSCRIPT") else rexc.ResponseError
            replies.append(error(text))
        else:
            raise rexc.ConnectionError(f"unexpected reply from redis: {line[:40]!r}")
    return replies


_PLAIN_PARSERS = ("_AsyncRESP2Parser", "_AsyncRESP3Parser")


def _states(account_id: str, fields: dict) -> list[WalletState]:
    values = {k.decode(): int(v) for k, v in fields.items()}
    return [WalletState(account_id, w, b, Status(values.get(f"{w}:s", 1)))
            for w, b in sorted(values.items()) if not w.endswith(":s")]
