-- Applies a batch of events in order, all or none; see redis_state.rs.
-- KEYS: 1 totals, 2 latency, 3 decisions, 4 rate, 5 sessions, 6 tool_runs,
--       7 meta; then, for each distinct session the batch touches, its hash
--       and its decision list; then one key per distinct event id.
-- ARGV: 1 now_sec, 2 now_nanos, 3 'session_ttl_ms window_ttl_ms
--       max_sessions max_tools' (one argument: most calls need none of
--       them), 4 dedup_ms, 5 known epoch, 6 candidate epoch, 7 n events,
--       8 ns sessions, 9 ne ids, 10 latency window generation the worker
--       holds ('' for none), 11 its sequence number, 12 decision window
--       generation, 13 its sequence number; then the ns session ids; then F
--       fields per event (F = 5, or 6 when the batch has ids, ne > 0):
--       kind (t e p s x o), session index (1..ns; 0 for kind o), tool (''
--       for none), duration ('' for none), outcome ('1' '0' '': success
--       for kind t, accepted for kind e), and with ids the id index (0 for
--       none, else 1..ne).
-- Reply: {0, events in the rate window before the batch, L, D, d, the
-- 1-based positions of the d duplicates, then, if any event was applied, the
-- state before the batch that the worker replays it on} or the epoch's reply
-- (see prelude.lua). L and D bring the worker's copy of the latency and
-- decision windows up to date as they were before the batch: 0 (it lacks
-- nothing), {1, v...} (the values it lacks, newest first) or {2, generation,
-- sequence, v...} (the whole window; drop the copy). The state: tool runs,
-- ok and known of the namespace if an applied event is a tool run; runs, ok
-- and known of each tool the applied tool runs name, in the order they first
-- name it; for each session index (1..ns, in order) with an event of kind p,
-- s or x (duplicates included): live (1/0), started ('' if none), tool runs,
-- prompts. The worker replays the batch on it as pass 2 below does: a reply
-- of a few values per batch instead of several per event.
--
-- Windows: `totals` keeps, per window, a generation (a token, new whenever
-- the list was found changed by anyone else, expired or never used) and a
-- sequence number (values pushed in this generation); the list holds the
-- last min(sequence, 100) values. A worker names the generation and
-- sequence it holds and gets only what it lacks.
--
-- Housekeeping runs at most once per server second per key: `totals` field
-- `hk` (session set trimmed, TTL of the session set), `hkl` / `hkd` (TTL
-- of the latency / decision list), each session hash's
-- `hk` (its TTL and its decision list's, its score in the session set; the
-- set's TTL is renewed with any score). A key this script creates gets its
-- TTL at once.
--
-- Pass 1 runs every check (epoch, the type of every key the batch writes
-- but the lists it pushes to, stored values, limits, duplicates) and only
-- reads; pass 2 computes in Lua; the push phase pushes to the lists, and
-- pops what it pushed if a push fails (a list of another type, a window
-- value this script did not write); the other writes come last and cannot
-- fail. So an error reply means nothing changed.

-- Globals read in loops, as locals (a register, not a table look-up).
local ARGV, KEYS, tonumber = ARGV, KEYS, tonumber

local reset = cm_epoch(7, ARGV[5], ARGV[6])
if reset then return reset end

local now_str = ARGV[2]
-- Kept as the strings they came as: a number converts to and from text at a
-- cost, so only what arithmetic needs is converted, when it needs it.
local dedup, candidate = ARGV[4], ARGV[6]
-- The limits of ARGV[3], split when first needed: 1 session TTL (ms), 2
-- window TTL (ms), 3 max sessions, 4 max tools (as text).
local lim = nil
local function limit(k)
  if not lim then lim = {string.match(ARGV[3], '^(%d+) (%d+) (%d+) (%d+)$')} end
  return lim[k]
end
-- A count or index from ARGV: the common 0 and 1 without `tonumber`, any
-- other converted once per script run (a batch names its sessions and ids
-- by index, event after event).
-- Tables cost an allocation, their growth and the collector's time: the
-- common case makes few, sized by their constructors. `NONE` stands for an
-- empty table that is only read.
local NONE = {}
local nums = nil
local function num(v)
  if v == '1' then return 1 elseif v == '0' then return 0 end
  if not nums then nums = {} end
  local x = nums[v]
  if not x then
    x = tonumber(v)
    nums[v] = x
  end
  return x
end
local n, ns, ne = num(ARGV[7]), num(ARGV[8]), num(ARGV[9])
local F, B, NK, SA = 5, 13 + ns, 7, 13
if ne > 0 then F = 6 end
local K_TOTALS, K_LAT, K_DEC, K_RATE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_SESS, K_RUNS = KEYS[5], KEYS[6]

-- A closure costs an allocation per run (and its upvalues more): helpers
-- are few, and what is used once is written out where it is used. An error
-- `CMDATA i` says KEYS[i] holds a value this script did not write.
-- A stored counter: 0 when absent, nil when not a non-negative integer.
local function count(v)
  if not v then return 0 end
  local x = tonumber(v)
  if x and x >= 0 and x % 1 == 0 then return x end
  return nil
end

-- Pass 1: checks and reads.

-- Duplicates: an id applied before (its key exists) or earlier in the batch.
local fresh, dup, applied = NONE, NONE, n
if ne > 0 then
  local seen = {}
  for j = 1, ne do
    local v, bad = cm_read(NK + 2 * ns + j, 'GET', KEYS[NK + 2 * ns + j])
    if bad then return bad end
    if v then seen[j] = true end
  end
  fresh, dup, applied = {}, {}, 0
  for i = 0, n - 1 do
    local e = num(ARGV[B + i * F + 6])
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
end
if applied == 0 then
  local out = {0, 0, 0, 0, n}
  for i = 1, n do out[4 + 1 + i] = i end
  return out
end

-- The server's clock (TIME), read when first needed: its second as a
-- string (housekeeping compares and stores it as is) and its time in ms.
local t, now_ms_v = nil, nil
local function now_s()
  if not t then t = redis.call('TIME') end
  return t[1]
end
local function now_ms()
  if not now_ms_v then
    now_ms_v = tonumber(now_s()) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now_ms_v
end

-- The window fields are read only when an event may push to that window
-- (every value read costs; a superset of what pass 1 finds it needs).
-- Likewise a session's `started` and `prompts`: only for a session the
-- batch ends, starts or prompts in (`full`).
local want_lat, want_dec, full = false, false, NONE
for i = 0, n - 1 do
  local o = B + i * F
  local kind = ARGV[o + 1]
  if kind == 't' then
    if ARGV[o + 4] ~= '' then want_lat = true end
  elseif kind == 'e' then
    if ARGV[o + 5] ~= '' then want_dec = true end
  elseif kind ~= 'o' then
    if full == NONE then full = {} end
    full[num(ARGV[o + 2])] = true
  end
end
local tv, bad
if want_dec then
  tv, bad = cm_read(1, 'HMGET', K_TOTALS, 'tool_runs', 'ok', 'known', 'events', 'hk',
    'rnow', 'rtot', 'rcnt', 'lgen', 'lseq', 'hkl', 'dgen', 'dseq', 'hkd')
elseif want_lat then
  tv, bad = cm_read(1, 'HMGET', K_TOTALS, 'tool_runs', 'ok', 'known', 'events', 'hk',
    'rnow', 'rtot', 'rcnt', 'lgen', 'lseq', 'hkl')
else
  tv, bad = cm_read(1, 'HMGET', K_TOTALS, 'tool_runs', 'ok', 'known', 'events', 'hk',
    'rnow', 'rtot', 'rcnt')
end
if bad then return bad end
-- The namespace's counters, and whether the batch changes them (`t_wruns`,
-- `t_wok`).
local t_runs, t_ok, t_known, t_events = count(tv[1]), count(tv[2]), count(tv[3]), count(tv[4])
local t_lseq, t_dseq, t_wruns, t_wok = count(tv[10]), count(tv[13]), false, false
if not (t_runs and t_ok and t_known and t_events and t_lseq and t_dseq) then
  return redis.error_reply('CMDATA ' .. 1)
end
-- Whether a key last housekept in server second `x` is due. Without
-- asking the server's clock when `x` is the second `totals` was last
-- housekept in and the worker's clock says it is that second still (the
-- common case: then at worst housekeeping waits for the worker's clock).
local hk_cur = nil
if tv[5] == ARGV[1] then hk_cur = tv[5] end
local function due(x)
  if hk_cur and x == hk_cur then return false end
  return x ~= now_s()
end
local hk_due = due(tv[5])
-- The session set's type is checked once, before it is first written.
local zset_checked = false
if hk_due then
  zset_checked = true
  bad = cm_wrongtype(5, 'zset')
  if bad then return bad end
end

-- A session's state: a table indexed by these (a table built from a list
-- fills its array part at once; named fields would each be hashed in).
-- S_DTYPE: the type its decision list was found to have (checked only for
-- a session the batch ends); S_DECS: decisions to push to that list (false
-- for none); S_EXISTED: its hash held data; S_FRESH: started anew by the
-- batch; S_COUNTED: counted against max_sessions; S_W_*: the field changed.
local S_SID, S_LIVE, S_ENDED, S_TOUCHED, S_DECS, S_STARTED, S_RUNS, S_PROMPTS, S_OK,
  S_KNOWN, S_EVENTS, S_HK, S_EXISTED, S_FRESH, S_COUNTED, S_DTYPE, S_W_RUNS, S_W_OK,
  S_W_PROMPTS, S_W_STARTED = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
  19, 20
-- A tool's counters: {runs, ok, known}.
local S, tools, tool_list = {}, NONE, NONE
local live, new_s, hlen, new_t = nil, 0, nil, 0
local need_lat, need_dec, any_run = false, false, false
for i = 0, n - 1 do
  if not dup[i] then
    local o = B + i * F
    local kind, j, tool = ARGV[o + 1], num(ARGV[o + 2]), ARGV[o + 3]
    if kind ~= 'o' and S[j] == nil then
      local key = KEYS[NK + 2 * j - 1]
      -- Every field it will have, in the order of the S_* indexes.
      local st = {ARGV[SA + j], false, false, false, false, false, 0, 0, 0, 0, 0, false, false,
        false, false, false, false, false, false, false}
      -- Every session hash this script writes has `last_seen`.
      local v, started, runs, prompts, ok, known, last, events, hk
      if full[j] then
        v, bad = cm_read(NK + 2 * j - 1, 'HMGET', key, 'started', 'tool_runs', 'prompts', 'ok',
          'known', 'last_seen', 'events', 'hk')
        if bad then return bad end
        started, runs, prompts, ok, known, last, events, hk =
          v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]
      else
        -- Neither `started` nor `prompts` is read, written or returned.
        v, bad = cm_read(NK + 2 * j - 1, 'HMGET', key, 'tool_runs', 'ok', 'known', 'last_seen',
          'events', 'hk')
        if bad then return bad end
        runs, ok, known, last, events, hk = v[1], v[2], v[3], v[4], v[5], v[6]
      end
      if started or runs or prompts or ok or known or last then
        if started and not string.match(started, '^%d+$') then
          return redis.error_reply('CMDATA ' .. NK + 2 * j - 1)
        end
        st[S_LIVE], st[S_STARTED] = true, started
        st[S_RUNS], st[S_PROMPTS], st[S_OK], st[S_KNOWN] = count(runs), count(prompts), count(ok), count(known)
        st[S_EVENTS] = count(events)
        if not (st[S_RUNS] and st[S_PROMPTS] and st[S_OK] and st[S_KNOWN] and st[S_EVENTS]) then
          return redis.error_reply('CMDATA ' .. NK + 2 * j - 1)
        end
        st[S_HK] = hk
      end
      st[S_EXISTED] = st[S_LIVE]
      S[j] = st
    end
    -- The decision list of a session the batch ends is deleted, then maybe
    -- pushed to: its type is checked here. (Any other session's is pushed
    -- to in the push phase, which finds a wrong type by failing.)
    if kind == 'x' and not S[j][S_DTYPE] then
      local dt = redis.call('TYPE', KEYS[NK + 2 * j])['ok']
      if dt ~= 'none' and dt ~= 'list' then
        return redis.error_reply('CMWRONGTYPE ' .. (NK + 2 * j))
      end
      S[j][S_DTYPE] = dt
    end
    if kind ~= 'o' then
      -- A session that ends or is housekept writes the session set.
      local st = S[j]
      if not zset_checked and (kind == 'x' or not st[S_EXISTED] or due(st[S_HK])) then
        zset_checked = true
        bad = cm_wrongtype(5, 'zset')
        if bad then return bad end
      end
    end
    if kind ~= 'o' and kind ~= 'x' and not S[j][S_COUNTED] then
      S[j][S_COUNTED] = true
      if not S[j][S_EXISTED] then
        live = live or redis.call('ZCOUNT', K_SESS, '(' .. (now_ms() - tonumber(limit(1))), '+inf')
        if live + new_s >= tonumber(limit(3)) then
          return redis.error_reply('CMCAPACITY sessions')
        end
        new_s = new_s + 1
      end
    end
    if kind == 't' then
      any_run = true
      if ARGV[o + 4] ~= '' then need_lat = true end
      if tool ~= '' and tools[tool] == nil then
        local r
        r, bad = cm_read(6, 'HGET', K_RUNS, tool)
        if bad then return bad end
        -- Its counters: 'runs ok known' (or 'runs', as older versions wrote).
        local runs, ok, known = 0, 0, 0
        if r then
          runs, ok, known = string.match(r, '^(%d+) (%d+) (%d+)$')
          if runs then
            runs, ok, known = tonumber(runs), tonumber(ok), tonumber(known)
          elseif string.match(r, '^%d+$') then
            runs, ok, known = tonumber(r), 0, 0
          else
            return redis.error_reply('CMDATA 6')
          end
        end
        local tr = {runs, ok, known}
        if not r then
          hlen = hlen or redis.call('HLEN', K_RUNS)
          if hlen + new_t >= tonumber(limit(4)) then
            return redis.error_reply('CMCAPACITY tools')
          end
          new_t = new_t + 1
        end
        if tools == NONE then tools, tool_list = {}, {} end
        tools[tool] = tr
        tool_list[#tool_list + 1] = tool
      end
    elseif kind == 'e' and ARGV[o + 5] ~= '' then
      need_dec = true
    end
  end
end

-- Events per second: 60 one-second slots, as crate::window::RateWindow,
-- by the worker's clock (ARGV[1]). The newest second's slot lives in
-- `totals`: `rnow` its second, `rcnt` its count, `rtot` the events in the 60
-- seconds ending at `rnow` (`rcnt` included). An event in that second (the
-- common case, compared as text) touches no other key. The first event of a
-- later second moves the finished one into the rate hash (fields s<i>/c<i>:
-- second and count of slot i = second % 60; `newest`: the last second moved
-- there) and takes the slots leaving the window out of `rtot`. When the
-- rate hash has expired, only the finished second is left.
local rnow, rtot, rcnt = tv[6], tv[7], tv[8]
local rate_legacy = false
if not rnow then
  -- Nothing yet, or a rate hash an older version wrote (`newest` and
  -- `total` there, the newest second's slot with the others): adopt it.
  local h
  h, bad = cm_read(4, 'HMGET', K_RATE, 'newest', 'total')
  if bad then return bad end
  if h[1] and tonumber(h[1]) then
    local q = tonumber(h[1]) % 60
    local sv = redis.call('HMGET', K_RATE, 's' .. q, 'c' .. q)
    rnow, rtot, rcnt, rate_legacy = h[1], h[2], false, true
    if sv[1] == h[1] then rcnt = sv[2] end
  end
end
-- `total`, `cnt`: the window's events and the newest second's before the
-- batch; `sec`: the second the batch counts in; `moved`: the finished
-- second (and its count) to move into the rate hash.
local total, cnt, sec, moved, moved_c = 0, 0, ARGV[1], nil, 0
local old = rnow and tonumber(rnow)
if rnow == ARGV[1] or (old and old >= tonumber(ARGV[1])) then
  -- This second, or the worker's clock is behind: counted in `rnow`.
  total, cnt, sec = tonumber(rtot) or 0, tonumber(rcnt) or 0, rnow
elseif old then
  local now_sec = tonumber(ARGV[1])
  moved, moved_c = old, tonumber(rcnt) or 0
  if now_sec - old >= 60 then
    moved = nil
  else
    -- Leaving: the seconds old - 59 .. now_sec - 60, all before `old`.
    local f, nf = {'newest'}, 1
    for q = math.max(old - 59, 0), now_sec - 60 do
      f[nf + 1], f[nf + 2] = 's' .. (q % 60), 'c' .. (q % 60)
      nf = nf + 2
    end
    local v
    v, bad = cm_read(4, 'HMGET', K_RATE, unpack(f))
    if bad then return bad end
    if v[1] then
      total = tonumber(rtot) or 0
      local k = 2
      for q = math.max(old - 59, 0), now_sec - 60 do
        if tonumber(v[k]) == q then total = total - (tonumber(v[k + 1]) or 0) end
        k = k + 2
      end
    else
      total = moved_c
    end
    -- Only a value this script did not write could take it below.
    if total < 0 then total = 0 end
  end
end

-- The reply, from the state before the batch (the worker replays the batch
-- on it; see the top of this file).
-- Its windows' parts (3 and 4) are filled in by the push phase.
local out, no = {0, total, 0, 0, 0}, 5
for i = 0, n - 1 do
  if dup[i] then
    no = no + 1
    out[no] = i + 1
  end
end
out[5] = no - 5
if any_run then
  out[no + 1], out[no + 2], out[no + 3] = t_runs, t_ok, t_known
  no = no + 3
end
for _, tool in ipairs(tool_list) do
  local tr = tools[tool]
  out[no + 1], out[no + 2], out[no + 3] = tr[1], tr[2], tr[3]
  no = no + 3
end
for j = 1, ns do
  if full[j] then
    local st = S[j]
    if st and st[S_LIVE] then
      out[no + 1], out[no + 2], out[no + 3], out[no + 4] = 1, st[S_STARTED] or '', st[S_RUNS], st[S_PROMPTS]
    else
      out[no + 1], out[no + 2], out[no + 3], out[no + 4] = 0, '', 0, 0
    end
    no = no + 4
  end
end

-- Pass 2: apply, in Lua.
-- `nl`, `nd`: the lengths of `lat_push`, `dec_push` (kept, not recounted
-- with `#` at every append).
local lat_push, dec_push, nl, nd = NONE, NONE, 0, 0
if need_lat then lat_push = {} end
if need_dec then dec_push = {} end
for i = 0, n - 1 do
  if not dup[i] then
    local o = B + i * F
    local kind, j, tool = ARGV[o + 1], num(ARGV[o + 2]), ARGV[o + 3]
    -- The outcome: a tool run's success, an edit's decision.
    local dur, succ = ARGV[o + 4], ARGV[o + 5]
    local acc = succ
    local st = S[j]
    if kind == 'x' then
      if st[S_LIVE] and st[S_STARTED] then
        st[S_LIVE], st[S_ENDED], st[S_DECS] = false, true, false
      end
    elseif kind ~= 'o' then
      if not st[S_LIVE] then
        st[S_LIVE], st[S_STARTED], st[S_FRESH] = true, now_str, true
        st[S_RUNS], st[S_PROMPTS], st[S_OK], st[S_KNOWN], st[S_EVENTS] = 0, 0, 0, 0, 0
      end
      st[S_TOUCHED] = true
      st[S_EVENTS] = st[S_EVENTS] + 1
      if kind == 't' then
        t_runs, t_wruns = t_runs + 1, true
        st[S_RUNS], st[S_W_RUNS] = st[S_RUNS] + 1, true
        if dur ~= '' then
          nl = nl + 1
          lat_push[nl] = dur
        end
        local okv = 0
        if succ == '1' then okv = 1 end
        local tr = nil
        if tool ~= '' then
          tr = tools[tool]
          tr[1] = tr[1] + 1
        end
        if succ ~= '' then
          t_ok, t_known, t_wok = t_ok + okv, t_known + 1, true
          st[S_OK], st[S_KNOWN], st[S_W_OK] = st[S_OK] + okv, st[S_KNOWN] + 1, true
          if tr then
            tr[2], tr[3] = tr[2] + okv, tr[3] + 1
          end
        end
      elseif kind == 'e' then
        if acc ~= '' then
          nd = nd + 1
          dec_push[nd] = acc
          if not st[S_DECS] then st[S_DECS] = {} end
          st[S_DECS][#st[S_DECS] + 1] = acc
        end
      elseif kind == 'p' then
        st[S_PROMPTS], st[S_W_PROMPTS] = st[S_PROMPTS] + 1, true
      elseif kind == 's' then
        st[S_STARTED], st[S_W_STARTED] = now_str, true
      end
    end
  end
end

-- The push phase: the batch's values are pushed to the windows, then to the
-- decision lists of the sessions it does not end, before any other write.
-- A push to a key of another type fails (CMWRONGTYPE), as does a window
-- holding a value this script did not write (CMDATA): then the pushes made
-- so far are popped again and nothing changed. LPUSH's reply gives each
-- window's length before the batch, which tells whether anyone else changed
-- it (a new generation then) and what the worker's copy lacks.

-- Pops what the push phase pushed: the windows as `lat` and `dec` say,
-- and the decision lists of sessions 1 .. upto - 1.
local function unpush(lat, dec, upto)
  if lat then redis.call('LPOP', K_LAT, nl) end
  if dec then redis.call('LPOP', K_DEC, nd) end
  for j = 1, upto - 1 do
    local st = S[j]
    if st and st[S_DECS] and not st[S_DTYPE] then redis.call('LPOP', KEYS[NK + 2 * j], #st[S_DECS]) end
  end
end
-- Pushes `list` to KEYS[i]: its new length, or nil and an error reply.
local function push(i, list)
  local len, err
  for a = 1, #list, 1000 do
    len, err = cm_read(i, 'LPUSH', KEYS[i], unpack(list, a, math.min(a + 999, #list)))
    if err then return nil, err end
  end
  return len
end
-- A window (list KEYS[i], `len` values before the batch's `off`) as the
-- worker at (wgen, wseq) lacks it. Returns the reply part, the generation
-- and the sequence number before the batch, or nil and an error reply.
local function sync(i, len, off, gen, seq, seq_text, wgen, wseq_text)
  local part, from = 0, nil
  if not gen or len ~= math.min(seq, 100) then
    -- Never used, expired, or changed by someone else: a new generation
    -- holding what the list holds (checked below).
    gen, seq, seq_text = candidate, len, nil
  end
  -- The worker is up to date (the common case, compared as text).
  if seq_text and wgen == gen and wseq_text == seq_text then
    return part, gen, seq
  end
  local wseq = tonumber(wseq_text)
  if wgen ~= gen or wseq > seq or seq - wseq >= 100 then
    part = {2, gen, seq}
    from = 99
  elseif seq > wseq then
    part = {1}
    from = seq - wseq - 1
  end
  if from and len > 0 then
    local vals = redis.call('LRANGE', KEYS[i], off, off + from)
    for _, x in ipairs(vals) do
      local valid
      if i == 2 then
        valid = string.match(x, '^%d+%.?%d*$') ~= nil
      else
        valid = x == '0' or x == '1'
      end
      if not valid then return nil, redis.error_reply('CMDATA ' .. i) end
      part[#part + 1] = x
    end
  end
  return part, gen, seq
end

local lgen, lseq, llen = tv[9], t_lseq, 0
local dgen, dseq, dlen = tv[12], t_dseq, 0
if need_lat then
  local len, err = push(2, lat_push)
  if err then return err end
  llen = len - nl
  local part
  part, lgen, lseq = sync(2, llen, nl, lgen, lseq, tv[10], ARGV[10], ARGV[11])
  if not part then
    unpush(true, false, 1)
    return lgen
  end
  out[3] = part
end
if need_dec then
  local len, err = push(3, dec_push)
  if err then
    unpush(need_lat, false, 1)
    return err
  end
  dlen = len - nd
  local part
  part, dgen, dseq = sync(3, dlen, nd, dgen, dseq, tv[13], ARGV[12], ARGV[13])
  if not part then
    unpush(need_lat, true, 1)
    return dgen
  end
  out[4] = part
end
-- Each session's decision list: its length after the push.
local dlens = NONE
for j = 1, ns do
  local st = S[j]
  if st and st[S_DECS] and not st[S_DTYPE] then
    local len, err = push(NK + 2 * j, st[S_DECS])
    if err then
      unpush(need_lat, need_dec, j)
      return err
    end
    if dlens == NONE then dlens = {} end
    dlens[j] = len
  end
end

-- Writes: every check passed; nothing below can fail. A count is written as
-- text made by `fmt` ('%d'): Redis would turn a Lua number into text with
-- '%.17g', which costs more.
local fmt = string.format
local zadded = false
do
  if hk_due then
    redis.call('ZREMRANGEBYSCORE', K_SESS, '-inf', now_ms() - tonumber(limit(1)))
  end
  if moved then
    local q = moved % 60
    redis.call('HSET', K_RATE, 'newest', fmt('%d', moved), 's' .. q, fmt('%d', moved), 'c' .. q,
      fmt('%d', moved_c))
    redis.call('PEXPIRE', K_RATE, limit(2))
  end
  if rate_legacy then redis.call('HDEL', K_RATE, 'total') end
  -- `totals`' fields and values to write (`nt` of them).
  -- (Sized by `false`s for the common case; written up to `nt`.)
  local tw = {'events', fmt('%d', t_events + applied), 'rtot', fmt('%d', total + applied),
    'rcnt', fmt('%d', cnt + applied), false, false, false, false, false, false, false, false,
    false, false}
  local nt = 6
  if sec ~= tv[6] then
    tw[nt + 1], tw[nt + 2], nt = 'rnow', sec, nt + 2
  end
  if t_wruns then
    tw[nt + 1], tw[nt + 2], nt = 'tool_runs', fmt('%d', t_runs), nt + 2
  end
  if t_wok then
    tw[nt + 1], tw[nt + 2], tw[nt + 3], tw[nt + 4], nt =
      'ok', fmt('%d', t_ok), 'known', fmt('%d', t_known), nt + 4
  end
  if hk_due then
    tw[nt + 1], tw[nt + 2], nt = 'hk', now_s(), nt + 2
  end
  for _, tool in ipairs(tool_list) do
    local tr = tools[tool]
    redis.call('HSET', K_RUNS, tool, string.format('%d %d %d', tr[1], tr[2], tr[3]))
  end
  for j = 1, ns do
    local st = S[j]
    if st then
      local sk, dk = KEYS[NK + 2 * j - 1], KEYS[NK + 2 * j]
      if st[S_ENDED] then redis.call('DEL', sk, dk) end
      if st[S_LIVE] and st[S_TOUCHED] then
        local kept = not st[S_FRESH] and not due(st[S_HK])
        -- A new session gets every field; one that existed, what changed.
        local w, nw = {'last_seen', now_str, 'events', fmt('%d', st[S_EVENTS]), false, false,
          false, false, false, false, false, false}, 4
        local all = st[S_FRESH]
        if all or st[S_W_RUNS] then
          w[nw + 1], w[nw + 2], nw = 'tool_runs', fmt('%d', st[S_RUNS]), nw + 2
        end
        if all or st[S_W_PROMPTS] then
          w[nw + 1], w[nw + 2], nw = 'prompts', fmt('%d', st[S_PROMPTS]), nw + 2
        end
        if all or st[S_W_OK] then
          w[nw + 1], w[nw + 2], w[nw + 3], w[nw + 4], nw =
            'ok', fmt('%d', st[S_OK]), 'known', fmt('%d', st[S_KNOWN]), nw + 4
        end
        if st[S_STARTED] and (all or st[S_W_STARTED]) then
          w[nw + 1], w[nw + 2], nw = 'started', st[S_STARTED], nw + 2
        end
        if not kept then
          w[nw + 1], w[nw + 2], nw = 'hk', now_s(), nw + 2
        end
        redis.call('HSET', sk, unpack(w, 1, nw))
        if not kept then
          redis.call('PEXPIRE', sk, limit(1))
          if not st[S_FRESH] then redis.call('PEXPIRE', dk, limit(1)) end
          redis.call('ZADD', K_SESS, now_ms(), st[S_SID])
          zadded = true
        end
        if st[S_DECS] then
          -- Pushed already, unless the batch ends the session (then after
          -- its DEL). Trimmed to 100 once it holds over 120 (readers take
          -- the first 100); a list just created, or of a new session, gets
          -- its TTL.
          local len = dlens[j]
          if st[S_DTYPE] then len = push(NK + 2 * j, st[S_DECS]) end
          if len > 120 then redis.call('LTRIM', dk, '0', '99') end
          if st[S_FRESH] or len == #st[S_DECS] then redis.call('PEXPIRE', dk, limit(1)) end
        end
      elseif st[S_ENDED] then
        redis.call('ZREM', K_SESS, st[S_SID])
      end
    end
  end
  if need_lat then
    if llen + nl > 100 then redis.call('LTRIM', K_LAT, '0', '99') end
    if llen == 0 or due(tv[11]) then
      redis.call('PEXPIRE', K_LAT, limit(2))
      tw[nt + 1], tw[nt + 2], nt = 'hkl', now_s(), nt + 2
    end
    if lgen ~= tv[9] then
      tw[nt + 1], tw[nt + 2], nt = 'lgen', lgen, nt + 2
    end
    tw[nt + 1], tw[nt + 2], nt = 'lseq', fmt('%d', lseq + nl), nt + 2
  end
  if need_dec then
    if dlen + nd > 100 then redis.call('LTRIM', K_DEC, '0', '99') end
    if dlen == 0 or due(tv[14]) then
      redis.call('PEXPIRE', K_DEC, limit(2))
      tw[nt + 1], tw[nt + 2], nt = 'hkd', now_s(), nt + 2
    end
    if dgen ~= tv[12] then
      tw[nt + 1], tw[nt + 2], nt = 'dgen', dgen, nt + 2
    end
    tw[nt + 1], tw[nt + 2], nt = 'dseq', fmt('%d', dseq + nd), nt + 2
  end
  redis.call('HSET', K_TOTALS, unpack(tw, 1, nt))
  -- The set lives as long as its newest member.
  if hk_due or zadded then redis.call('PEXPIRE', K_SESS, limit(1)) end
  for _, j in ipairs(fresh) do
    redis.call('SET', KEYS[NK + 2 * ns + j], '1', 'PX', dedup)
  end
end
return out
