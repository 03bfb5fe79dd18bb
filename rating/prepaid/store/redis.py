"""Redis balance store: atomic Lua scripts, one call per shard per operation,
all of an operation's calls in one pipeline, through redis-py's public API
(Script objects: the pipeline checks that Redis has the script, and loads
it, before it runs). The scripts answer arrays of integers and strings.

Keys (every key of an account carries its shard tag, rating.prepaid.store.shards):
- `{s17}:bal:<account>`  hash: `<wallet>` balance in minor units, `<wallet>:s`
  state (absent: OK), `<wallet>:a` its alarm, how many warning levels have
  warned (absent: WalletPolicy.alarm_of its state and balance);
- `{s17}:deferred`       set of `<balance key>|<wallet>` waiting for a cut-off;
- `{s17}:op:<seq>`       the shard's result of operation `seq` (MessagePack of the
  script's answer), which makes a repeated call return the first result and
  change nothing (expires after `marker_ttl_s`; forgotten once the ledger has
  settled the operation);
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
import operator
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.cluster import RedisCluster

from rating.prepaid.records import Applied, Entries, Event, WalletState
from rating.prepaid.store.base import BalanceStore, Overrides, StoreMismatch, StoreUnavailable, past_the_limit
from rating.prepaid.store.shards import SHARDS, shard_of, tag
from rating.prepaid.wallets import BALANCE_LIMIT_MINOR, EventType, Status, WalletPolicy

# ARGV[2] policies follow, numbered from 1: wallet name, emergency credit, restore level, cut off,
# friendly now, L, then L warning levels (highest first). A wallet's own policy comes first; accounts'
# own policies for the same wallet follow it. byname: a wallet's own policy number.
_POLICIES = """
local pol, names, byname = {}, {}, {}
local a = 3
for k = 1, tonumber(ARGV[2]) do
  names[k] = ARGV[a]
  local levels = {}
  for j = 1, tonumber(ARGV[a + 5]) do levels[j] = tonumber(ARGV[a + 5 + j]) end
  pol[k] = {levels, -tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), ARGV[a + 3] == '1', ARGV[a + 4] == '1'}
  if byname[ARGV[a]] == nil then byname[ARGV[a]] = k end
  a = a + 6 + #levels
end
"""

# transition(policy, s, alarm, b, friendly, n, ev) -> new state, new alarm, appending item n, the
# event type and its level to ev (mirrors wallets.transition; alarm_of mirrors WalletPolicy.alarm_of)
_TRANSITION = """
local function emit(ev, n, kind, level) ev[#ev + 1] = n; ev[#ev + 1] = kind; ev[#ev + 1] = level end

local function below_of(levels, b)
  local c = 0
  for j = 1, #levels do if b < levels[j] then c = c + 1 end end
  return c
end

local function alarm_of(p, s, b)
  if s == 1 then return 0 end
  if s == 2 then return math.max(1, below_of(p[1], b)) end
  return #p[1]
end

local function warn(ev, n, levels, from, to)
  for j = from + 1, to do emit(ev, n, 1, levels[j]) end
end

local function transition(p, s, al, b, friendly, n, ev)
  local levels, below, restore, cut = p[1], p[2], p[3], p[4]
  if cut and b < below then
    if s == 1 or s == 2 then
      warn(ev, n, levels, al, #levels)
      if friendly then emit(ev, n, 3, 0); return 3, #levels end
      emit(ev, n, 2, 0)
      return 4, #levels
    end
    if s == 3 and not friendly then emit(ev, n, 2, 0); return 4, al end
    return s, al
  end
  if s == 4 and b < restore then return s, al end
  if s == 3 or s == 4 then emit(ev, n, 4, 0) end
  local c = below_of(levels, b)
  warn(ev, n, levels, al, c)
  for j = al, c + 1, -1 do emit(ev, n, 5, levels[j]) end
  if c > 0 then return 2, c end
  return 1, c
end

local function set_state(key, w, s, ns, deferred)
  if ns == s then return end
  if ns == 1 then redis.call('HDEL', key, w .. ':s') else redis.call('HSET', key, w .. ':s', ns) end
  if ns == 3 then redis.call('SADD', deferred, key .. '|' .. w)
  elseif s == 3 then redis.call('SREM', deferred, key .. '|' .. w) end
end

-- the alarm is kept in `<wallet>:a` once a change set it (absent: alarm_of the state and balance)
local function set_alarm(key, w, al, nal)
  if al ~= nal then redis.call('HSET', key, w .. ':a', nal) end
end
"""

# The bound epoch must be the shard's; ARGV[e] epoch, ARGV[e + 1] the operation's sequence.
_MARK = """
local found = redis.call('HGET', KEYS[3], 'epoch')
if found ~= ARGV[e] then return redis.error_reply('RATING_MARK ' .. (found or '')) end
local done = redis.call('GET', KEYS[1])
if done then return cmsgpack.unpack(done) end
"""
_MARK_SEQ = """
if tonumber(ARGV[e + 1]) > tonumber(redis.call('HGET', KEYS[3], 'seq') or '0') then
  redis.call('HSET', KEYS[3], 'seq', ARGV[e + 1])
end
"""

# KEYS: result, deferred set, mark, balance hashes. ARGV: ttl, P, P x policy, then two binary strings,
# one item per balance hash: its policy's number (one byte, from 1; it names the wallet) and the delta
# (8 bytes, little-endian int64), then epoch and sequence (numpy packs all items in one call, not
# one argument each). Returns three arrays: the balances, the
# states, and per event its item (from 1), type and level. The result is kept (MessagePack) for a repeated
# call. A balance that would pass +-LIMIT is refused first, with nothing written:
# "RATING_LIMIT <balance key>|<wallet> <balance>".
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
local balances, states, ev = {}, {}, {}
for i = 4, #KEYS do
  local n = i - 3
  local k = string.byte(wallets, n)
  local key, w, p = KEYS[i], names[k], pol[k]
  local delta = struct.unpack('<i8', deltas, n * 8 - 7)
  local b = redis.call('HINCRBY', key, w, string.format('%d', delta))
  local kept = redis.call('HMGET', key, w .. ':s', w .. ':a')
  local s = tonumber(kept[1] or '1')
  local al = tonumber(kept[2] or alarm_of(p, s, b - delta))
  local ns, nal = transition(p, s, al, b, p[5], n, ev)
  set_state(key, w, s, ns, KEYS[2])
  if kept[2] then set_alarm(key, w, al, nal) else set_alarm(key, w, -1, nal) end
  balances[n], states[n] = b, ns
end
local result = {balances, states, ev}
redis.call('SET', KEYS[1], cmsgpack.pack(result), 'EX', ARGV[1])
""" + _MARK_SEQ + """
return result
"""

# KEYS: result, deferred set, mark. ARGV: ttl, P, P x policy, M, M x (deferred member, policy
# number) for the accounts' own policies, epoch, sequence. Cuts off deferred wallets of wallets not
# in friendly hours. Returns five arrays, one item per wallet it looked at: balance keys, wallets,
# balances, states; then per event its item (from 1), type and level.
SWEEP_LUA = _POLICIES + _TRANSITION + """
local own = {}
for i = 1, tonumber(ARGV[a]) do own[ARGV[a + 2 * i - 1]] = tonumber(ARGV[a + 2 * i]) end
local e = a + 1 + 2 * tonumber(ARGV[a])
""" + _MARK + """
local keys, names_of, balances, states, ev = {}, {}, {}, {}, {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local key, w = string.match(m, '^(.*)|([^|]*)$')
  local p = pol[own[m] or byname[w] or 0]
  if p and not p[5] then
    local kept = redis.call('HMGET', key, w, w .. ':s', w .. ':a')
    local b = tonumber(kept[1] or '0')
    local s = tonumber(kept[2] or '1')
    local al = tonumber(kept[3] or alarm_of(p, s, b))
    local n = #keys + 1
    local ns, nal = transition(p, s, al, b, false, n, ev)
    set_state(key, w, s, ns, KEYS[2])
    if kept[3] then set_alarm(key, w, al, nal) else set_alarm(key, w, -1, nal) end
    keys[n], names_of[n], balances[n], states[n] = key, w, b, ns
  end
end
local result = {keys, names_of, balances, states, ev}
redis.call('SET', KEYS[1], cmsgpack.pack(result), 'EX', ARGV[1])
""" + _MARK_SEQ + """
return result
"""

# a cluster that stays down, or keeps migrating past its retries, is as unreachable as one Redis
_DOWN = (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError, rexc.ClusterError,
         rexc.TryAgainError, OSError)
_first = operator.itemgetter(0)
# Script calls in flight at once from one store to a cluster: below the client's connections
# per node, past which it refuses (MaxConnectionsError)
CLUSTER_CALLS_MAX = 32
CLUSTER_CONNECTIONS_MAX = 64
CLUSTER_CALL_TRIES = 3


class RedisStore(BalanceStore):
    name = "redis"

    def __init__(self, url: str, *, marker_ttl_s: int = 7 * 86400, timeout_s: float = 5.0):
        self.url = url
        self.marker_ttl_s = marker_ttl_s
        self.timeout_s = timeout_s
        self.redis = _client(url, timeout_s)
        self.clustered = isinstance(self.redis, RedisCluster)
        self._cluster_calls = asyncio.Semaphore(CLUSTER_CALLS_MAX)
        # Script objects: a pipeline that runs one loads it first if Redis lacks it (SCRIPT EXISTS)
        self._scripts = {"apply": self.redis.register_script(APPLY_LUA),
                         "sweep": self.redis.register_script(SWEEP_LUA)}
        self._shards_of_op: dict[int, list[int]] = {}
        self._keys: dict[str, tuple[int, bytes]] = {}  # account -> (shard, balance key)

    def _key(self, account_id: str) -> tuple[int, bytes]:
        known = self._keys.get(account_id)
        if known is None:
            shard = shard_of(account_id)
            known = self._keys[account_id] = (shard, f"{tag(shard)}:bal:{account_id}".encode())
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
            args += [p.name, p.emergency_credit_minor, p.restore_above_minor, int(p.cut_off),
                     int(friendly.get(p.name, True)), len(p.levels_minor), *p.levels_minor]
        return args, wallet_number, own_number

    async def _run_shards(self, script: str, calls: dict[int, tuple[list, list]]) -> dict[int, list]:
        """One call of a script per shard: all in one pipeline on one Redis; on a
        cluster, each call to its shard's master, all at once. A call that still
        finds the script missing (Redis lost it after the pipeline checked) changed
        nothing: it is run once more, and the pipeline loads the script again."""
        results: dict[int, list] = {}
        todo = calls
        for _attempt in range(2):
            replies = await (self._calls_apart if self.clustered else self._calls_piped)(script, todo)
            missing = {}
            for shard, reply in zip(todo, replies, strict=True):
                if isinstance(reply, rexc.NoScriptError):
                    missing[shard] = todo[shard]
                elif isinstance(reply, _DOWN):
                    raise StoreUnavailable(f"redis {self.url}: {reply}")
                elif isinstance(reply, Exception):
                    raise self._refusal(reply)
                else:
                    results[shard] = reply
            if not missing:
                return {shard: results[shard] for shard in calls}  # in the calls' order
            todo = missing
        raise StoreUnavailable(f"redis {self.url}: script {script} could not be loaded")

    async def _calls_piped(self, script: str, calls: dict[int, tuple[list, list]]) -> list:
        pipe = self.redis.pipeline(transaction=False)
        for keys, args in calls.values():
            await self._scripts[script](keys=keys, args=args, client=pipe)
        try:
            return await pipe.execute(raise_on_error=False)
        except _DOWN as exc:
            raise StoreUnavailable(f"redis {self.url}: {exc}") from exc

    async def _calls_apart(self, script: str, calls: dict[int, tuple[list, list]]) -> list:
        """A cluster pipeline cannot carry EVALSHA: one call per shard, concurrently;
        each follows MOVED/ASK itself and loads the script on all masters when its
        master lacks it (a promoted replica may)."""
        return await asyncio.gather(*(self._call_apart(script, keys, args) for keys, args in calls.values()),
                                    return_exceptions=True)

    async def _call_apart(self, script: str, keys: list, args: list) -> Any:
        # redis-py's cluster client can fail inside itself while it opens connections
        # concurrently or refreshes its map of the cluster (redis/redis-py#3835): the
        # call is sent again, which the script's kept result makes safe, and after a
        # few such failures its outcome is unknown, as for a dropped connection
        async with self._cluster_calls:  # past its connections per node the client fails
            for _attempt in range(CLUSTER_CALL_TRIES):
                try:
                    return await self._scripts[script](keys=keys, args=args)
                except (AttributeError, TypeError) as exc:
                    failed = exc
        return rexc.ConnectionError(f"cluster client: {failed!r}")

    async def apply(self, seq: int, entries: Entries, policies: dict[str, WalletPolicy],
                    friendly: dict[str, bool], overrides: Overrides | None = None) -> Applied:
        n = len(entries)
        if n == 0:
            return Applied(np.zeros(0, np.int64), np.ones(0, np.int8), [])
        policy_args, number, own_number = self._policy_args(policies, friendly, overrides)
        found = list(map(self._keys.get, entries.account_ids))  # C-level loop; misses computed once
        known: list[tuple[int, bytes]] = (
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
        deltas = np.ascontiguousarray(entries.changes_minor, dtype="<i8")[order].tobytes()
        keys = [known[i][1] for i in order.tolist()]
        head, tail = [self.marker_ttl_s, *policy_args], [self._epoch_bytes(), seq]
        calls = {}
        for lo, hi in zip(starts, starts[1:], strict=False):
            t = tag(int(shards[order[lo]]))
            calls[lo] = ([f"{t}:op:{seq}", f"{t}:deferred", f"{t}:mark", *keys[lo:hi]],
                         [*head, wallets[lo:hi], deltas[lo * 8:hi * 8], *tail])
        self._shards_of_op[seq] = [int(shards[order[lo]]) for lo in calls]
        replies = await self._run_shards("apply", calls)
        balances_by_shard: list[int] = []
        states_by_shard: list[int] = []
        tagged: list[tuple[int, int, EventType, int]] = []
        for lo, (balances, states, events) in replies.items():  # in shard order, like `order`
            balances_by_shard += balances
            states_by_shard += states
            for k in range(0, len(events), 3):
                tagged.append((int(order[lo + events[k] - 1]), len(tagged), EventType(events[k + 1]),
                               int(events[k + 2])))
        balances_minor = np.empty(n, dtype=np.int64)
        statuses = np.empty(n, dtype=np.int8)
        balances_minor[order] = balances_by_shard
        statuses[order] = states_by_shard
        tagged.sort()  # entry order, as the in-process store emits them
        events_out = [Event(kind, entries.account_ids[i], entries.wallets[i], int(balances_minor[i]),
                            level_minor=level) for i, _, kind, level in tagged]
        return Applied(balances_minor, statuses, events_out)

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
            return past_the_limit(_account_of(key), wallet, int(balance))
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
            shard, balance_key = self._key(account)
            own[shard] += [balance_key + b"|" + wallet.encode(), number]
        epoch = self._epoch_bytes()
        calls = {s: ([f"{tag(s)}:op:{seq}", f"{tag(s)}:deferred", f"{tag(s)}:mark"],
                     [self.marker_ttl_s, *policy_args, len(own[s]) // 2, *own[s], epoch, seq])
                 for s in range(SHARDS)}
        self._shards_of_op[seq] = list(range(SHARDS))
        replies = await self._run_shards("sweep", calls)
        changed, events = [], []
        for shard in range(SHARDS):
            keys, wallets, balances, states, kinds = replies[shard]
            local = [WalletState(_account_of(key), wallet.decode(), b, Status(s))
                     for key, wallet, b, s in zip(keys, wallets, balances, states, strict=True)]
            for k in range(0, len(kinds), 3):
                state = local[kinds[k] - 1]
                events.append(Event(EventType(kinds[k + 1]), state.account_id, state.wallet,
                                    state.balance_minor, level_minor=int(kinds[k + 2])))
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
            keys: list[bytes] = []
            async for key in self.redis.scan_iter(match="{s*}:bal:*", count=page_size):  # every master
                keys.append(key)
                if len(keys) == page_size:
                    yield await self._page(keys)
                    keys = []
            if keys:
                yield await self._page(keys)
        except _DOWN as exc:
            raise StoreUnavailable(f"redis {self.url}: {exc}") from exc

    async def _page(self, keys: list[bytes]) -> list[WalletState]:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        page = []
        for key, fields in zip(keys, await pipe.execute(), strict=True):
            page += _states(_account_of(key), fields)
        return page

    async def replace_all(self, states: list[WalletState], *, seq: int = 0) -> None:
        epoch = self._epoch_bytes()
        try:
            stale = [key async for key in self.redis.scan_iter(match="{s*}:*", count=1000)]
            for lo in range(0, len(stale), 1000):
                await self.redis.unlink(*stale[lo:lo + 1000])  # a cluster splits it by slot
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


def _client(url: str, timeout_s: float) -> Any:
    """A client of one Redis, or of a Redis Cluster for `redis+cluster://host:port`
    (any node; the client learns the others and follows MOVED and ASK redirections,
    and retries TRYAGAIN while slots migrate)."""
    options: dict[str, Any] = dict(socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    scheme, sep, rest = url.partition("://")
    if scheme in ("redis+cluster", "rediss+cluster"):
        return RedisCluster.from_url(scheme.removesuffix("+cluster") + sep + rest,
                                     max_connections=CLUSTER_CONNECTIONS_MAX, **options)
    return aioredis.Redis.from_url(url, retry_on_timeout=False, **options)


def _account_of(balance_key: bytes | str) -> str:
    """The account of a balance key `{s17}:bal:<account>`."""
    name = balance_key.decode() if isinstance(balance_key, bytes) else balance_key
    return name.split(":bal:", 1)[1]


def _states(account_id: str, fields: dict) -> list[WalletState]:
    values = {k.decode(): int(v) for k, v in fields.items()}
    return [WalletState(account_id, w, b, Status(values.get(f"{w}:s", 1)))
            for w, b in sorted(values.items()) if ":" not in w]  # `<wallet>:s` state, `<wallet>:a` alarm
