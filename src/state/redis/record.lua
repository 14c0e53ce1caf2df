-- Applies a batch's operations, all or none. What an event does is decided
-- in Rust (src/state/rule.rs); the worker merges a batch's changes into
-- operations per key and packs them (Plan::pack in record_plan.rs, which
-- lists the arguments one by one). This script knows the key layout, not
-- what an event means.
-- KEYS: 1 meta, 2 totals, 3 rate, 4 sessions (index), 5 tools (index),
--   6 latency window, 7 decision window, the event-id keys, then the keys
--   of the entries (totals first, then tools, then sessions).
-- An entry's mode: '+' add to what is there, '=' replace it, 'x' delete it;
--   a field's op: '+' add, '?' set if absent, '=' set, '.' read only.
-- Reply: {0, rate's newest second minus the worker's, events in the rate
--   window before the batch, latency part, decision part, then the fields
--   of the entries marked ret as they were ('' absent)}; {3, i...}: the i-th
--   event ids were applied before (nothing changed); or the epoch's reply
--   (prelude.lua). A window part: 0 (in step), {1, v...} (values the worker
--   lacks, newest first) or {2, generation, sequence, v...} (all of it).
-- Errors (nothing changed): CMWRONGTYPE i, CMDATA i (KEYS[i] holds what
--   this crate did not write), CMCAPACITY sessions|tools.

local reset = cm_epoch(1, ARGV[1], ARGV[2])
if reset then return reset end
local CANDIDATE, SESSION_TTL, WINDOW_TTL = ARGV[2], ARGV[4], ARGV[5]
local WINDOW, LIST_TRIM = 100, 120
local argi = 14
local function arg() argi = argi + 1 return ARGV[argi] end
local function take(n)
  local list = {}
  for i = 1, n do list[i] = arg() end
  return list
end
local function data_error(i) return redis.error_reply('CMDATA ' .. i) end
-- A stored count as a number (0 when absent), or nil when it is not one.
local function stored(v)
  local x = tonumber(v or 0)
  if x and x >= 0 and x % 1 == 0 then return x end
end
-- The server's clock, read when first needed: housekeeping runs at most
-- once per server second per key.
local clock = nil
local function server_now()
  if not clock then
    local t = redis.call('TIME')
    clock = {second = t[1], ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}
  end
  return clock
end
local function due(housekept) return housekept ~= server_now().second end

-- Phase 1, dedup: an event id applied before stops the batch. ARGV 1-13
-- are read where used; 14 on, in the order Plan::pack writes them.
local ids = {}
for i = 1, tonumber(ARGV[14]) do ids[i] = 7 + i end
local latency_values = take(tonumber(arg()))
local decision_values = take(tonumber(arg()))
local entries = {}
for e = 1, tonumber(arg()) do
  local entry = {key = tonumber(arg()), kind = arg(), mode = arg(), ret = arg() == '1'}
  entry.fields, entry.ops, entry.values = {}, {}, {}
  for f = 1, tonumber(arg()) do entry.fields[f], entry.ops[f], entry.values[f] = arg(), arg(), arg() end
  if entry.kind ~= 'total' then entry.member = arg() end
  if entry.kind == 'session' then entry.list, entry.pushes = tonumber(arg()), take(tonumber(arg())) end
  entries[e] = entry
end
local seen = {}
for n, i in ipairs(ids) do
  local v, bad = cm_read(i, 'GET', KEYS[i])
  if bad then return bad end
  if v then seen[#seen + 1] = n end
end
if #seen > 0 then return {3, unpack(seen)} end

-- Phase 2, check: read every entry's fields (with totals the bookkeeping of
-- the windows and the rate), check that they are counts, and the limits.
-- Totals' bookkeeping: the namespace's housekeeping and the rate, and a
-- window's generation, sequence and housekeeping when the batch pushes to it.
local BOOKKEEPING = {'hk', 'rnow', 'rcnt', 'rtot'}
if #latency_values > 0 then BOOKKEEPING = {'hk', 'rnow', 'rcnt', 'rtot', 'lgen', 'lseq', 'hkl'} end
if #decision_values > 0 then
  BOOKKEEPING = {'hk', 'rnow', 'rcnt', 'rtot', 'lgen', 'lseq', 'hkl', 'dgen', 'dseq', 'hkd'}
end
local book = {}
local new, index_written = {total = 0, tool = 0, session = 0}, false
for _, entry in ipairs(entries) do
  -- Besides its fields: totals' bookkeeping, a session's `hk` (the server
  -- second it was last housekept in).
  local names, extra = {unpack(entry.fields)}, {}
  if entry.kind == 'total' then extra = BOOKKEEPING elseif entry.kind == 'session' then extra = {'hk'} end
  for _, name in ipairs(extra) do names[#names + 1] = name end
  local got, bad = cm_read(entry.key, 'HMGET', KEYS[entry.key], unpack(names))
  if bad then return bad end
  entry.before, entry.counts, entry.exists = {}, {}, false
  for f = 1, #entry.fields do
    entry.counts[f] = stored(got[f])
    if not entry.counts[f] then return data_error(entry.key) end
    entry.before[f] = got[f]
    entry.exists = entry.exists or got[f] ~= false
  end
  if entry.kind == 'total' then
    for b, name in ipairs(extra) do book[name] = got[#entry.fields + b] end
  elseif entry.kind == 'session' then
    entry.hk = got[#names]
    entry.housekeep = entry.mode == '=' or (entry.mode == '+' and due(entry.hk))
    index_written = index_written or entry.housekeep or entry.mode == 'x'
    -- A list deleted and pushed to again cannot be popped back: check it now.
    bad = entry.mode == '=' and cm_wrongtype(entry.list, 'list')
    if bad then return bad end
  end
  if not entry.exists and entry.mode ~= 'x' then new[entry.kind] = new[entry.kind] + 1 end
end
for _, name in ipairs({'rnow', 'rcnt', 'rtot', 'lseq', 'dseq'}) do
  if not stored(book[name]) then return data_error(2) end
end
if new.session > 0 then
  local live, bad = cm_read(4, 'ZCOUNT', KEYS[4], '(' .. (server_now().ms - tonumber(SESSION_TTL)), '+inf')
  if bad then return bad end
  if live + new.session > tonumber(ARGV[6]) then return redis.error_reply('CMCAPACITY sessions') end
end
if new.tool > 0 then
  local known, bad = cm_read(5, 'SCARD', KEYS[5])
  if bad then return bad end
  if known + new.tool > tonumber(ARGV[7]) then return redis.error_reply('CMCAPACITY tools') end
end
local namespace_due = due(book.hk)
local bad = (index_written or namespace_due) and cm_wrongtype(4, 'zset')
if bad then return bad end

-- The rate, events per second over 60 s by the worker's clock: in totals
-- `rnow` the newest second, `rcnt` its count, `rtot` the events in the 60 s
-- ending at it; in the rate hash `s<q>`/`c<q>`, second and count of slot
-- q = second % 60 for seconds before `rnow`, and `alive` (absent when the
-- hash expired: then only `rnow`'s count is known). Written in phase 4.
local count, second = tonumber(ARGV[9]), tonumber(ARGV[3])
local rnow, rcnt, rtot = tonumber(book.rnow or -1), stored(book.rcnt), stored(book.rtot)
local function slot(s) return 's' .. (s % 60), 'c' .. (s % 60) end
local rate_total, rate_writes = rtot, nil
if second > rnow then
  rate_total = 0
  if rnow >= 0 and second - rnow < 60 then
    -- The finished second moves to the hash; the seconds leaving the window
    -- (rnow - 59 .. second - 60) come off the total.
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

-- Phase 3, windows: push to them and to the kept sessions' decision lists.
-- A push fails on a key of another type, a window on a value this crate did
-- not write: then everything pushed is popped again and the error returned.
local pushed = {}
local function undo()
  for _, p in ipairs(pushed) do redis.call('LPOP', KEYS[p.key], p.count) end
end
local function push(i, values)
  local len, err = 0, nil
  for from = 1, #values, 1000 do
    local to = math.min(from + 999, #values)
    len, err = cm_read(i, 'LPUSH', KEYS[i], unpack(values, from, to))
    if err then
      undo()
      return nil, err
    end
    pushed[#pushed + 1] = {key = i, count = to - from + 1}
  end
  return len
end

-- A window is synced by generation and sequence (values pushed in that
-- generation; the list holds the last min(sequence, 100)); a list changed,
-- expired or new starts a new generation. Returns the reply part, the
-- generation and sequence after the batch and the length before it.
local function sync(i, values, pattern, gen, seq, worker_gen, worker_seq)
  local len, err = push(i, values)
  if not len then return nil, err end
  local before, part, lacking = len - #values, 0, 0
  seq = tonumber(seq or 0)
  if not gen or before ~= math.min(seq, WINDOW) then gen, seq = CANDIDATE, before end
  local worker = tonumber(worker_seq)
  if worker_gen ~= gen or worker > seq or seq - worker >= WINDOW then
    part, lacking = {2, gen, seq}, WINDOW
  elseif worker < seq then
    part, lacking = {1}, seq - worker
  end
  for _, v in ipairs(lacking > 0 and redis.call('LRANGE', KEYS[i], #values, #values + lacking - 1) or {}) do
    if not string.match(v, pattern) then
      undo()
      return nil, data_error(i)
    end
    part[#part + 1] = v
  end
  return part, gen, seq + #values, before
end

local reply = {0, rnow - second, rate_total, 0, 0}
local totals = {} -- the fields to write to totals, as HSET takes them
local function write(field, value) totals[#totals + 1], totals[#totals + 2] = field, value end
local windows = {
  {key = 6, values = latency_values, pattern = '^%d+%.?%d*$', gen = 'lgen', seq = 'lseq', hk = 'hkl'},
  {key = 7, values = decision_values, pattern = '^[01]$', gen = 'dgen', seq = 'dseq', hk = 'hkd'},
}
for w, window in ipairs(windows) do
  if #window.values > 0 then
    local part, gen, seq, before = sync(window.key, window.values, window.pattern,
      book[window.gen], book[window.seq], ARGV[8 + 2 * w], ARGV[9 + 2 * w])
    if not part then return gen end
    reply[3 + w], window.before = part, before
    write(window.gen, gen)
    write(window.seq, seq)
  end
end
for _, entry in ipairs(entries) do
  if entry.kind == 'session' and entry.mode == '+' and #entry.pushes > 0 then
    local len, err = push(entry.list, entry.pushes)
    if not len then return err end
    entry.list_len = len
  end
end

-- Phase 4, apply: every check passed; nothing below can fail.
for _, window in ipairs(windows) do
  if window.before and window.before + #window.values > WINDOW then
    redis.call('LTRIM', KEYS[window.key], 0, WINDOW - 1)
  end
  if window.before and (window.before == 0 or due(book[window.hk])) then
    redis.call('PEXPIRE', KEYS[window.key], WINDOW_TTL)
    write(window.hk, server_now().second)
  end
end
-- An entry's fields after the batch, appended to `w` as HSET takes them.
local function updated(entry, w)
  for f, field in ipairs(entry.fields) do
    local op, value, before = entry.ops[f], entry.values[f], entry.mode == '+' and entry.before[f]
    if op == '+' then
      value = (before and entry.counts[f] or 0) + value
    elseif op == '.' or (op == '?' and before) then
      value = nil
    end
    if value then w[#w + 1], w[#w + 2] = field, value end
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
    local w = updated(entry, {})
    if entry.housekeep then w[#w + 1], w[#w + 2] = 'hk', server_now().second end
    redis.call('HSET', KEYS[entry.key], unpack(w))
    if entry.mode == '=' and #entry.pushes > 0 then entry.list_len = push(entry.list, entry.pushes) end
    local len = entry.list_len or 0
    if len > LIST_TRIM then redis.call('LTRIM', KEYS[entry.list], 0, WINDOW - 1) end
    -- A list just made gets its TTL at once; housekeeping renews both TTLs
    -- and the session's place in the index.
    if len > 0 and len == #entry.pushes then redis.call('PEXPIRE', KEYS[entry.list], SESSION_TTL) end
    if entry.housekeep then
      redis.call('PEXPIRE', KEYS[entry.key], SESSION_TTL)
      redis.call('PEXPIRE', KEYS[entry.list], SESSION_TTL)
      redis.call('ZADD', KEYS[4], server_now().ms, entry.member)
    end
  end
  for f = 1, entry.ret and #entry.fields or 0 do reply[#reply + 1] = entry.before[f] or '' end
end
if rate_writes then
  redis.call('HSET', KEYS[3], unpack(rate_writes))
  redis.call('PEXPIRE', KEYS[3], WINDOW_TTL)
end
write('rnow', rnow)
write('rcnt', rcnt)
write('rtot', rtot)

-- Phase 5, housekeeping of the namespace, once per server second: the index
-- drops expired sessions and lives as long as its newest member.
if namespace_due then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', server_now().ms - tonumber(SESSION_TTL))
  write('hk', server_now().second)
end
if namespace_due or index_written then redis.call('PEXPIRE', KEYS[4], SESSION_TTL) end
redis.call('HSET', KEYS[2], unpack(totals))
for _, i in ipairs(ids) do redis.call('SET', KEYS[i], '1', 'PX', ARGV[8]) end
return reply
