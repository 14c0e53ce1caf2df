-- Applies a batch of events in order, all or none; see redis_state.rs.
-- KEYS: 1 totals, 2 latency, 3 decisions, 4 rate, 5 sessions, 6 tool_runs,
--       7 tool_ok, 8 tool_known, 9 meta; then, for each distinct session the
--       batch touches, its hash and its decision list; then one key per
--       distinct event id.
-- ARGV: 1 now_sec, 2 now_nanos, 3 session_ttl_ms, 4 window_ttl_ms,
--       5 max_sessions, 6 max_tools, 7 dedup_ms, 8 known epoch,
--       9 candidate epoch, 10 n events, 11 ns sessions, 12 ne ids; then the
--       ns session ids; then 7 fields per event: kind (t e p s x o), session
--       index (1..ns; 0 for kind o), tool ('' for none), duration ('' for
--       none), success ('1' '0' ''), accepted ('1' '0' ''), id index (0 for
--       none, else 1..ne).
-- Reply: {0, events in the rate window before the batch, latency window
-- before, decision window before (newest first), 10 values per event}, or
-- the epoch's reply (see prelude.lua).
--
-- Pass 1 runs every check (epoch, the type of every key the batch writes,
-- stored values, limits, duplicates) and only reads; pass 2 computes in Lua; the writes come last
-- and cannot fail. So an error reply means nothing changed.

local reset = cm_epoch(9, ARGV[8], ARGV[9])
if reset then return reset end

local now_sec = tonumber(ARGV[1])
local now_str = ARGV[2]
local sttl = tonumber(ARGV[3])
local wttl = tonumber(ARGV[4])
local max_sessions = tonumber(ARGV[5])
local max_tools = tonumber(ARGV[6])
local dedup = tonumber(ARGV[7])
local n, ns, ne = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local F, B, NK = 7, 12 + ns, 9
local K_TOTALS, K_LAT, K_DEC, K_RATE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_SESS, K_RUNS, K_OK, K_KNOWN = KEYS[5], KEYS[6], KEYS[7], KEYS[8]

-- Pass 1: checks and reads. A key's type is checked where it is first read
-- (cm_read) or, for keys only written, with TYPE; only keys this batch
-- writes are checked.

-- KEYS[i] holds a value this script did not write.
local function data_error(i)
  return redis.error_reply('CMDATA ' .. i)
end
-- A stored counter: 0 when absent, nil when not a non-negative integer.
local function count(v)
  if not v then return 0 end
  if not string.match(v, '^%d+$') then return nil end
  return tonumber(v)
end

-- Duplicates: an id applied before (its key exists) or earlier in the batch.
local seen, fresh = {}, {}
for j = 1, ne do
  local v, bad = cm_read(NK + 2 * ns + j, 'GET', KEYS[NK + 2 * ns + j])
  if bad then return bad end
  if v then seen[j] = true end
end
local dup, applied = {}, 0
for i = 0, n - 1 do
  local e = tonumber(ARGV[B + i * F + 7])
  if e > 0 and seen[e] then
    dup[i] = true
  else
    if e > 0 then
      seen[e] = true
      fresh[#fresh + 1] = e
    end
    applied = applied + 1
  end
end
if applied == 0 then
  local out = {}
  for i = 1, n do
    for _ = 1, 9 do out[#out + 1] = 0 end
    out[#out + 1] = 1
  end
  return {0, 0, {}, {}, out}
end

local bad = cm_wrongtype(5, 'zset')
if bad then return bad end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local tv
tv, bad = cm_read(1, 'HMGET', K_TOTALS, 'tool_runs', 'ok', 'known', 'events')
if bad then return bad end
local T = {runs = count(tv[1]), ok = count(tv[2]), known = count(tv[3]), events = count(tv[4])}
if not (T.runs and T.ok and T.known and T.events) then return data_error(1) end

local S, counted, dk_checked, tools, tool_list = {}, {}, {}, {}, {}
local live, new_s, hlen, new_t = nil, 0, nil, 0
local need_lat, need_dec = false, false
for i = 0, n - 1 do
  if not dup[i] then
    local o = B + i * F
    local kind, j, tool = ARGV[o + 1], tonumber(ARGV[o + 2]), ARGV[o + 3]
    if kind ~= 'o' and S[j] == nil then
      local key = KEYS[NK + 2 * j - 1]
      local st = {sid = ARGV[12 + j], live = false, ended = false, touched = false, decs = {}}
      -- Every session hash this script writes has `last_seen`.
      local v
      v, bad = cm_read(NK + 2 * j - 1, 'HMGET', key, 'started', 'tool_runs', 'prompts', 'ok',
        'known', 'last_seen', 'events')
      if bad then return bad end
      if v[1] or v[2] or v[3] or v[4] or v[5] or v[6] then
        if v[1] and not string.match(v[1], '^%d+$') then return data_error(NK + 2 * j - 1) end
        st.live, st.started = true, v[1]
        st.runs, st.prompts, st.ok, st.known = count(v[2]), count(v[3]), count(v[4]), count(v[5])
        st.events = count(v[7])
        if not (st.runs and st.prompts and st.ok and st.known and st.events) then
          return data_error(NK + 2 * j - 1)
        end
      end
      st.existed = st.live
      S[j] = st
    end
    -- The session's decision list is written by a decision, deleted by an end.
    if (kind == 'x' or (kind == 'e' and ARGV[o + 6] ~= '')) and not dk_checked[j] then
      dk_checked[j] = true
      bad = cm_wrongtype(NK + 2 * j, 'list')
      if bad then return bad end
    end
    if kind ~= 'o' and kind ~= 'x' and not counted[j] then
      counted[j] = true
      if not S[j].existed then
        live = live or redis.call('ZCOUNT', K_SESS, '(' .. (now_ms - sttl), '+inf')
        if live + new_s >= max_sessions then
          return redis.error_reply('CMCAPACITY sessions')
        end
        new_s = new_s + 1
      end
    end
    if kind == 't' then
      if ARGV[o + 4] ~= '' then need_lat = true end
      if tool ~= '' and tools[tool] == nil then
        local r, k, kn
        r, bad = cm_read(6, 'HGET', K_RUNS, tool)
        if bad then return bad end
        k, bad = cm_read(7, 'HGET', K_OK, tool)
        if bad then return bad end
        kn, bad = cm_read(8, 'HGET', K_KNOWN, tool)
        if bad then return bad end
        local tr = {runs = count(r), ok = count(k), known = count(kn), outcomes = false}
        if not tr.runs then return data_error(6) end
        if not tr.ok then return data_error(7) end
        if not tr.known then return data_error(8) end
        if not r then
          hlen = hlen or redis.call('HLEN', K_RUNS)
          if hlen + new_t >= max_tools then
            return redis.error_reply('CMCAPACITY tools')
          end
          new_t = new_t + 1
        end
        tools[tool] = tr
        tool_list[#tool_list + 1] = tool
      end
    elseif kind == 'e' and ARGV[o + 6] ~= '' then
      need_dec = true
    end
  end
end

-- Windows as they were before this batch (newest first).
local lat_before, dec_before = {}, {}
if need_lat then
  lat_before, bad = cm_read(2, 'LRANGE', K_LAT, 0, 99)
  if bad then return bad end
  for _, x in ipairs(lat_before) do
    if not string.match(x, '^%d+%.?%d*$') then return data_error(2) end
  end
end
if need_dec then
  dec_before, bad = cm_read(3, 'LRANGE', K_DEC, 0, 99)
  if bad then return bad end
  for _, x in ipairs(dec_before) do
    if x ~= '0' and x ~= '1' then return data_error(3) end
  end
end

-- Events per second: 60 one-second slots, as crate::window::RateWindow
-- (fields s<i>/c<i>: second and count of slot i), plus `total`, the events
-- in the slots of the 60 seconds ending at `newest`, so that a call reads
-- O(1) fields instead of 120 (moving `newest` forward reads the slots leaving).
local h
h, bad = cm_read(4, 'HMGET', K_RATE, 'newest', 'total')
if bad then return bad end
local newest = tonumber(h[1]) or 0
local total = tonumber(h[2]) or 0
local sec = math.max(now_sec, newest)
if sec > newest then
  if sec - newest >= 60 then
    total = 0
  else
    local f = {}
    for s = math.max(newest - 59, 0), sec - 60 do
      local q = s % 60
      f[#f + 1] = 's' .. q
      f[#f + 1] = 'c' .. q
    end
    if #f > 0 then
      local v = redis.call('HMGET', K_RATE, unpack(f))
      local j = 1
      for s = math.max(newest - 59, 0), sec - 60 do
        if tonumber(v[j]) == s then total = total - (tonumber(v[j + 1]) or 0) end
        j = j + 2
      end
    end
  end
end
local r = sec % 60
local sv = redis.call('HMGET', K_RATE, 's' .. r, 'c' .. r)
local slot_c = 0
if tonumber(sv[1]) == sec then slot_c = tonumber(sv[2]) or 0 end

-- Pass 2: apply, in Lua.
local out, lat_push, dec_push = {}, {}, {}
for i = 0, n - 1 do
  local runs, truns, ok, known, tok, tknown, prompts, started, sruns = 0, 0, 0, 0, 0, 0, 0, '', 0
  local isdup = 0
  if dup[i] then
    isdup = 1
  else
    local o = B + i * F
    local kind, j, tool = ARGV[o + 1], tonumber(ARGV[o + 2]), ARGV[o + 3]
    local dur, succ, acc = ARGV[o + 4], ARGV[o + 5], ARGV[o + 6]
    local st = S[j]
    if kind == 'x' then
      if st.live and st.started then
        started, sruns, prompts = st.started, st.runs, st.prompts
        st.live, st.ended, st.decs = false, true, {}
      end
    elseif kind ~= 'o' then
      if not st.live then
        st.live, st.started = true, now_str
        st.runs, st.prompts, st.ok, st.known, st.events = 0, 0, 0, 0, 0
      end
      st.touched = true
      st.events = st.events + 1
      if kind == 't' then
        T.runs = T.runs + 1
        runs = T.runs
        st.runs = st.runs + 1
        if dur ~= '' then lat_push[#lat_push + 1] = dur end
        local okv = 0
        if succ == '1' then okv = 1 end
        if succ ~= '' then
          T.ok, T.known = T.ok + okv, T.known + 1
          ok, known = T.ok, T.known
          st.ok, st.known = st.ok + okv, st.known + 1
        end
        if tool ~= '' then
          local tr = tools[tool]
          tr.runs = tr.runs + 1
          truns = tr.runs
          if succ ~= '' then
            tr.ok, tr.known, tr.outcomes = tr.ok + okv, tr.known + 1, true
            tok, tknown = tr.ok, tr.known
          end
        end
      elseif kind == 'e' then
        if acc ~= '' then
          dec_push[#dec_push + 1] = acc
          st.decs[#st.decs + 1] = acc
        end
      elseif kind == 'p' then
        st.prompts = st.prompts + 1
        prompts = st.prompts
      elseif kind == 's' then
        st.started = now_str
      end
    end
  end
  local e = #out
  out[e + 1] = runs
  out[e + 2] = truns
  out[e + 3] = ok
  out[e + 4] = known
  out[e + 5] = tok
  out[e + 6] = tknown
  out[e + 7] = prompts
  out[e + 8] = started
  out[e + 9] = sruns
  out[e + 10] = isdup
end

-- Writes: every check passed; nothing below can fail.
local function push_all(key, list)
  for a = 1, #list, 1000 do
    redis.call('LPUSH', key, unpack(list, a, math.min(a + 999, #list)))
  end
end
do
  redis.call('ZREMRANGEBYSCORE', K_SESS, '-inf', now_ms - sttl)
  redis.call('HSET', K_RATE, 'newest', sec, 'total', total + applied, 's' .. r, sec, 'c' .. r, slot_c + applied)
  redis.call('PEXPIRE', K_RATE, wttl)
  redis.call('HSET', K_TOTALS, 'tool_runs', T.runs, 'ok', T.ok, 'known', T.known, 'events', T.events + applied)
  for _, tool in ipairs(tool_list) do
    local tr = tools[tool]
    redis.call('HSET', K_RUNS, tool, tr.runs)
    if tr.outcomes then
      redis.call('HSET', K_OK, tool, tr.ok)
      redis.call('HSET', K_KNOWN, tool, tr.known)
    end
  end
  for j = 1, ns do
    local st = S[j]
    if st then
      local sk, dk = KEYS[NK + 2 * j - 1], KEYS[NK + 2 * j]
      if st.ended then redis.call('DEL', sk, dk) end
      if st.live and st.touched then
        if st.started then redis.call('HSET', sk, 'started', st.started) end
        redis.call('HSET', sk, 'tool_runs', st.runs, 'prompts', st.prompts, 'ok', st.ok,
          'known', st.known, 'last_seen', now_str, 'events', st.events)
        redis.call('PEXPIRE', sk, sttl)
        redis.call('ZADD', K_SESS, now_ms, st.sid)
      elseif st.ended then
        redis.call('ZREM', K_SESS, st.sid)
      end
      if #st.decs > 0 then
        push_all(dk, st.decs)
        redis.call('LTRIM', dk, 0, 99)
        redis.call('PEXPIRE', dk, sttl)
      end
    end
  end
  if need_lat then
    push_all(K_LAT, lat_push)
    redis.call('LTRIM', K_LAT, 0, 99)
    redis.call('PEXPIRE', K_LAT, wttl)
  end
  if need_dec then
    push_all(K_DEC, dec_push)
    redis.call('LTRIM', K_DEC, 0, 99)
    redis.call('PEXPIRE', K_DEC, wttl)
  end
  redis.call('PEXPIRE', K_SESS, sttl)
  for _, j in ipairs(fresh) do
    redis.call('SET', KEYS[NK + 2 * ns + j], '1', 'PX', dedup)
  end
end
return {0, total, lat_before, dec_before, out}
