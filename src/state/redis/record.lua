-- Applies a batch's operations, all or none. What an event does is decided
-- in Rust (src/state/rule.rs); the worker merges a batch's changes into
-- operations per key and packs them (Plan::pack in record_plan.rs lists the
-- arguments). This script knows the key layout, not what an event means.
-- KEYS: 1 meta, 2 totals, 3 rate, 4 sessions (index), 5 tools (index), 6
--   latency window, 7 decision window, the event-id keys, then the entries'.
-- An entry's mode: '+' add to what is there, '=' replace it, 'x' delete it;
--   a field's op: '+' add, '?' set if absent, '=' set, '.' read only.
-- Reply: {0, rate's newest second minus the worker's, events in the rate
--   window before, latency part, decision part, the ret entries' fields as
--   they were ('' absent)}; {3, i...}: the i-th event ids were applied
--   before; or the epoch's reply (prelude.lua). A window part: 0 (in step),
--   {1, v...} (what the worker lacks, newest first) or {2, gen, seq, v...}.
-- Errors (nothing changed): CMWRONGTYPE i, CMDATA i (KEYS[i] holds what this
--   crate did not write), CMCAPACITY sessions|tools.
local reset = cm_epoch(1, ARGV[1], ARGV[2])
if reset then return reset end
local CANDIDATE, SESSION_TTL, WINDOW_TTL = ARGV[2], ARGV[4], ARGV[5]
local WINDOW, LIST_TRIM = 100, 120
local function data_error(i) return redis.error_reply('CMDATA ' .. i) end
local function is_count(v) return not v or string.match(v, '^%d+$') ~= nil end
-- The server's clock, read when first needed: housekeeping runs at most
-- once per server second per key.
local clock = nil
local function server_now()
  local t = clock or redis.call('TIME')
  clock = clock or {second = t[1], ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}
  return clock
end
local function due(housekept) return housekept ~= server_now().second end

-- Phase 1, dedup: an event id applied before stops the batch. The values to
-- push and the entries' fields are read in place, by their index in ARGV.
local ids, at = tonumber(ARGV[14]), 16 + tonumber(ARGV[15])
-- The windows: the values to push (ARGV[from .. to]) and where they live.
local latency = {from = 16, to = at - 1, key = 6, pattern = '^%d+%.?%d*$', gen = 'lgen', seq = 'lseq', hk = 'hkl'}
local decisions = {from = at + 1, to = at + tonumber(ARGV[at]), key = 7, pattern = '^[01]$', gen = 'dgen',
  seq = 'dseq', hk = 'hkd'}
at = decisions.to + 2
local entries = {}
for e = 1, tonumber(ARGV[at - 1]) do
  local n = tonumber(ARGV[at + 4])
  local entry = {key = tonumber(ARGV[at]), kind = ARGV[at + 1], mode = ARGV[at + 2],
    ret = ARGV[at + 3] == '1', n = n, names = at + 5, ops = at + 5 + n, values = at + 5 + 2 * n,
    member = false, list = false, pushes = 0, npush = 0, got = false, first = 1, exists = false,
    housekeep = false, list_len = 0}
  at = at + 5 + 3 * n
  if entry.kind ~= 'total' then entry.member, at = ARGV[at], at + 1 end
  if entry.kind == 'session' then
    entry.list, entry.npush, entry.pushes = tonumber(ARGV[at]), tonumber(ARGV[at + 1]), at + 2
    at = at + 2 + entry.npush
  end
  entries[e] = entry
end
local seen = {}
for n = 1, ids do
  local v, bad = cm_read(7 + n, 'GET', KEYS[7 + n])
  if bad then return bad end
  if v then seen[#seen + 1] = n end
end
if #seen > 0 then return {3, unpack(seen)} end

-- Phase 2, check: read totals' bookkeeping and every entry's fields (a
-- session's after its `hk`, the second it was last housekept in), check
-- that they are counts, and the limits.
local FIELDS = {'hk', 'rnow', 'rcnt', 'rtot', 'lgen', 'lseq', 'hkl', 'dgen', 'dseq', 'hkd'}
local got, bad = cm_read(2, 'HMGET', KEYS[2], unpack(FIELDS))
if bad then return bad end
local book = {}
for f = 1, #FIELDS do book[FIELDS[f]] = got[f] end
local valid = is_count(book.rnow) and is_count(book.rcnt) and is_count(book.rtot)
if not (valid and is_count(book.lseq) and is_count(book.dseq)) then return data_error(2) end
local new, index_written = {total = 0, tool = 0, session = 0}, false
for _, entry in ipairs(entries) do
  local last = entry.names + entry.n - 1
  if entry.kind == 'session' then
    entry.got, bad = cm_read(entry.key, 'HMGET', KEYS[entry.key], 'hk', unpack(ARGV, entry.names, last))
    entry.first = 2
  elseif entry.n > 0 then
    entry.got, bad = cm_read(entry.key, 'HMGET', KEYS[entry.key], unpack(ARGV, entry.names, last))
  end
  if bad then return bad end
  for f = entry.first, entry.first + entry.n - 1 do
    local v = entry.got[f]
    if not is_count(v) then return data_error(entry.key) end
    entry.exists = entry.exists or v ~= false
  end
  if entry.kind == 'session' then
    entry.housekeep = entry.mode == '=' or (entry.mode == '+' and due(entry.got[1]))
    index_written = index_written or entry.housekeep or entry.mode == 'x'
    -- A list deleted and pushed to again cannot be popped back: check it now.
    bad = entry.mode == '=' and cm_wrongtype(entry.list, 'list')
    if bad then return bad end
  end
  if not entry.exists and entry.mode ~= 'x' then new[entry.kind] = new[entry.kind] + 1 end
end
if new.session > 0 then
  local since = '(' .. (server_now().ms - tonumber(SESSION_TTL))
  local live, bad = cm_read(4, 'ZCOUNT', KEYS[4], since, '+inf')
  if bad then return bad end
  if live + new.session > tonumber(ARGV[6]) then return redis.error_reply('CMCAPACITY sessions') end
end
if new.tool > 0 then
  local known, bad = cm_read(5, 'SCARD', KEYS[5])
  if bad then return bad end
  if known + new.tool > tonumber(ARGV[7]) then return redis.error_reply('CMCAPACITY tools') end
end
local namespace_due = due(book.hk)
bad = (index_written or namespace_due) and cm_wrongtype(4, 'zset')
if bad then return bad end

-- The rate, events per second over 60 s by the worker's clock: in totals
-- `rnow` the newest second, `rcnt` its count, `rtot` the events in the 60 s
-- ending at it; in the rate hash `s<q>`/`c<q>`, second and count of slot
-- q = second % 60 for seconds before `rnow`, and `alive` (absent when the
-- hash expired: then only `rnow`'s count is known). Written in phase 4.
local count, second = tonumber(ARGV[9]), tonumber(ARGV[3])
local rnow = tonumber(book.rnow or -1)
local rcnt, rtot = tonumber(book.rcnt or 0), tonumber(book.rtot or 0)
local function slot(s) return 's' .. (s % 60), 'c' .. (s % 60) end
local rate_total, rate_writes = rtot, nil
if second > rnow then
  rate_total = 0
  if rnow >= 0 and second - rnow < 60 then
    -- rnow moves to the hash; seconds rnow - 59 .. second - 60 leave.
    local first, names = math.max(rnow - 59, 0), {'alive'}
    for s = first, second - 60 do names[#names + 1], names[#names + 2] = slot(s) end
    local got, bad = cm_read(3, 'HMGET', KEYS[3], unpack(names))
    if bad then return bad end
    rate_total = rcnt
    if got[1] then
      rate_total = rtot
      for s = first, second - 60 do
        local n = 2 * (s - first) + 2
        if tonumber(got[n]) == s then rate_total = rate_total - (tonumber(got[n + 1]) or 0) end
      end
      rate_total = math.max(rate_total, 0)
    end
    local sf, cf = slot(rnow)
    rate_writes = {'alive', 1, sf, rnow, cf, rcnt}
  end
  rnow, rcnt, rtot = second, count, rate_total + count
elseif rnow - second < 60 and second ~= rnow then
  -- A late second, still in the window: counted in its own slot.
  local sf, cf = slot(second)
  local got, bad = cm_read(3, 'HMGET', KEYS[3], sf, cf)
  if bad then return bad end
  local c = count
  if tonumber(got[1]) == second then c = c + (tonumber(got[2]) or 0) end
  rate_writes = {'alive', 1, sf, second, cf, c}
  rtot = rtot + count
else
  -- The newest second, or one 60 s or more behind: counted in the newest.
  rcnt, rtot = rcnt + count, rtot + count
end

-- Phase 3, windows: push to them and to the kept sessions' decision lists;
-- on a key of another type or a value this crate did not write, pop it all.
local pushed = {}
local function undo()
  for _, p in ipairs(pushed) do redis.call('LPOP', KEYS[p.key], p.count) end
end
-- Pushes ARGV[from .. to] to KEYS[i]: its length after, or nil and an error.
local function push(i, from, to)
  local len, err = 0, nil
  for a = from, to, 1000 do
    local b = math.min(a + 999, to)
    len, err = cm_read(i, 'LPUSH', KEYS[i], unpack(ARGV, a, b))
    if err then
      undo()
      return nil, err
    end
    pushed[#pushed + 1] = {key = i, count = b - a + 1}
  end
  return len
end

-- A window is synced by generation and sequence (values pushed in that
-- generation; the list holds the last min(sequence, 100)); a list changed,
-- expired or new starts a new generation. Returns the reply part, the
-- generation and sequence after the batch and the length before it.
local function sync(window, gen, seq, worker_gen, worker_seq)
  local i, pushes = window.key, window.to - window.from + 1
  local len, err = push(i, window.from, window.to)
  if not len then return nil, err end
  local before, part, lacking = len - pushes, 0, 0
  seq = tonumber(seq or 0)
  if not gen or before ~= math.min(seq, WINDOW) then gen, seq = CANDIDATE, before end
  local worker = tonumber(worker_seq)
  if worker_gen ~= gen or worker > seq or seq - worker >= WINDOW then
    part, lacking = {2, gen, seq}, WINDOW
  elseif worker < seq then
    part, lacking = {1}, seq - worker
  end
  if lacking > 0 and before > 0 then
    local values = redis.call('LRANGE', KEYS[i], pushes, pushes + lacking - 1)
    for v = 1, #values do
      if not string.match(values[v], window.pattern) then
        undo()
        return nil, data_error(i)
      end
      part[#part + 1] = values[v]
    end
  end
  return part, gen, seq + pushes, before
end

local reply = {0, rnow - second, rate_total, 0, 0}
local totals = {} -- the fields to write to totals, as HSET takes them
local function write(field, value) totals[#totals + 1], totals[#totals + 2] = field, value end
local windows = {latency, decisions}
for w = 1, 2 do
  local window = windows[w]
  if window.to >= window.from then
    local worker_gen, worker_seq = ARGV[8 + 2 * w], ARGV[9 + 2 * w]
    local part, gen, seq, before = sync(window, book[window.gen], book[window.seq], worker_gen, worker_seq)
    if not part then return gen end
    reply[3 + w], window.before = part, before
    write(window.gen, gen)
    write(window.seq, seq)
  end
end
for _, entry in ipairs(entries) do
  if entry.kind == 'session' and entry.mode == '+' and entry.npush > 0 then
    local len, err = push(entry.list, entry.pushes, entry.pushes + entry.npush - 1)
    if not len then return err end
    entry.list_len = len
  end
end

-- Phase 4, apply: every check passed; nothing below can fail.
for _, window in ipairs(windows) do
  if window.before and window.before + window.to - window.from + 1 > WINDOW then
    redis.call('LTRIM', KEYS[window.key], 0, WINDOW - 1)
  end
  if window.before and (window.before == 0 or due(book[window.hk])) then
    redis.call('PEXPIRE', KEYS[window.key], WINDOW_TTL)
    write(window.hk, server_now().second)
  end
end
-- An entry's fields after the batch, as HSET takes them, after `w`.
local function updated(entry, w)
  for f = 0, entry.n - 1 do
    local op, value = ARGV[entry.ops + f], ARGV[entry.values + f]
    local before = entry.mode == '+' and entry.got[entry.first + f]
    if op == '+' then
      value = (before or 0) + value
    elseif op == '.' or (op == '?' and before) then
      value = nil
    end
    if value then w[#w + 1], w[#w + 2] = ARGV[entry.names + f], value end
  end
  return w
end
for _, entry in ipairs(entries) do
  if entry.mode ~= '+' then redis.call('DEL', KEYS[entry.key]) end
  if entry.mode ~= '+' and entry.kind == 'session' then redis.call('DEL', KEYS[entry.list]) end
  if entry.mode == 'x' then redis.call('ZREM', KEYS[4], entry.member) end
  if entry.kind == 'total' then updated(entry, totals) end
  if entry.kind == 'tool' then
    redis.call('HSET', KEYS[entry.key], unpack(updated(entry, {})))
    if not entry.exists then redis.call('SADD', KEYS[5], entry.member) end
  end
  if entry.kind == 'session' and entry.mode ~= 'x' then
    local w = entry.housekeep and {'hk', server_now().second} or {}
    redis.call('HSET', KEYS[entry.key], unpack(updated(entry, w)))
    if entry.mode == '=' and entry.npush > 0 then
      entry.list_len = push(entry.list, entry.pushes, entry.pushes + entry.npush - 1)
    end
    local len = entry.list_len
    if len > LIST_TRIM then redis.call('LTRIM', KEYS[entry.list], 0, WINDOW - 1) end
    -- A list just made gets its TTL at once; housekeeping renews both TTLs
    -- and the session's place in the index.
    if len > 0 and len == entry.npush then redis.call('PEXPIRE', KEYS[entry.list], SESSION_TTL) end
    if entry.housekeep then
      redis.call('PEXPIRE', KEYS[entry.key], SESSION_TTL)
      redis.call('PEXPIRE', KEYS[entry.list], SESSION_TTL)
      redis.call('ZADD', KEYS[4], server_now().ms, entry.member)
    end
  end
  for f = entry.first, entry.ret and entry.first + entry.n - 1 or 0 do
    reply[#reply + 1] = entry.got[f] or ''
  end
end
if rate_writes then
  redis.call('HSET', KEYS[3], unpack(rate_writes))
  redis.call('PEXPIRE', KEYS[3], WINDOW_TTL)
end

-- Phase 5, housekeeping of the namespace, once per server second: the index
-- drops expired sessions and lives as long as its newest member.
if namespace_due then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', server_now().ms - SESSION_TTL)
  write('hk', server_now().second)
end
if namespace_due or index_written then redis.call('PEXPIRE', KEYS[4], SESSION_TTL) end
redis.call('HSET', KEYS[2], 'rnow', rnow, 'rcnt', rcnt, 'rtot', rtot, unpack(totals))
for n = 1, ids do redis.call('SET', KEYS[7 + n], '1', 'PX', ARGV[8]) end
return reply
