-- Applies a batch of events in order, all or none; see redis_state.rs.
-- KEYS: totals, lat, dec, rate, sessions, tool_runs, tool_ok, tool_known
-- ARGV: prefix, now_sec, now_nanos, session_ttl_ms, window_ttl_ms,
--       max_sessions, max_tools, n, then 6 fields per event:
--       kind (t e p s x o), session id, tool, duration, success, accepted
local K_TOTALS, K_LAT, K_DEC, K_RATE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_SESS, K_RUNS, K_OK, K_KNOWN = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local P = ARGV[1]
local now_sec = tonumber(ARGV[2])
local now_str = ARGV[3]
local sttl = tonumber(ARGV[4])
local wttl = tonumber(ARGV[5])
local max_sessions = tonumber(ARGV[6])
local max_tools = tonumber(ARGV[7])
local n = tonumber(ARGV[8])
local F, B = 6, 8

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', K_SESS, '-inf', now_ms - sttl)

-- Pass 1: limits, before anything changes.
local known_s, new_s = {}, 0
local known_t, new_t = {}, 0
local zcard, hlen = nil, nil
local need_lat, need_dec = false, false
for i = 0, n - 1 do
  local o = B + i * F
  local kind, sid, tool = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  if kind ~= 'o' and kind ~= 'x' and known_s[sid] == nil then
    known_s[sid] = true
    if redis.call('EXISTS', P .. 's:' .. sid) == 0 then
      zcard = zcard or redis.call('ZCARD', K_SESS)
      if zcard + new_s >= max_sessions then
        return redis.error_reply('CMCAPACITY sessions')
      end
      new_s = new_s + 1
    end
  end
  if kind == 't' then
    if ARGV[o + 4] ~= '' then need_lat = true end
    if tool ~= '' and known_t[tool] == nil then
      known_t[tool] = true
      if redis.call('HEXISTS', K_RUNS, tool) == 0 then
        hlen = hlen or redis.call('HLEN', K_RUNS)
        if hlen + new_t >= max_tools then
          return redis.error_reply('CMCAPACITY tools')
        end
        new_t = new_t + 1
      end
    end
  elseif kind == 'e' and ARGV[o + 6] ~= '' then
    need_dec = true
  end
end

-- Windows as they were before this batch (newest first).
local lat_before, dec_before = {}, {}
if need_lat then lat_before = redis.call('LRANGE', K_LAT, 0, 99) end
if need_dec then dec_before = redis.call('LRANGE', K_DEC, 0, 99) end

-- Events per second: 60 one-second slots, as crate::window::RateWindow
-- (fields s<i>/c<i>: second and count of slot i), plus `total`, the events
-- in the slots of the 60 seconds ending at `newest`, so that a call reads
-- O(1) fields instead of 120 (moving `newest` forward reads the slots leaving).
local h = redis.call('HMGET', K_RATE, 'newest', 'total')
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
-- As RateWindow::count, the window ends at the newest second recorded (`sec`),
-- so an event whose clock lags (or stepped back) still counts itself: the
-- reply's first value is `total`, the events in that window before this batch.
redis.call('HSET', K_RATE, 'newest', sec, 'total', total + n, 's' .. r, sec, 'c' .. r, slot_c + n)
redis.call('PEXPIRE', K_RATE, wttl)

-- Pass 2: apply.
local out = {}
for i = 0, n - 1 do
  local o = B + i * F
  local kind, sid, tool = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  local dur, succ, acc = ARGV[o + 4], ARGV[o + 5], ARGV[o + 6]
  local runs, truns, ok, known, tok, tknown, prompts, started, sruns = 0, 0, 0, 0, 0, 0, 0, '', 0
  local sk = P .. 's:' .. sid
  if kind == 'x' then
    local v = redis.call('HMGET', sk, 'started', 'tool_runs', 'prompts')
    if v[1] then
      started = v[1]
      sruns = tonumber(v[2]) or 0
      prompts = tonumber(v[3]) or 0
      redis.call('DEL', sk, P .. 'd:' .. sid)
      redis.call('ZREM', K_SESS, sid)
    end
  elseif kind ~= 'o' then
    if redis.call('EXISTS', sk) == 0 then
      redis.call('HSET', sk, 'started', now_str, 'tool_runs', 0, 'prompts', 0, 'ok', 0, 'known', 0)
    end
    redis.call('HSET', sk, 'last_seen', now_str)
    if kind == 't' then
      runs = redis.call('HINCRBY', K_TOTALS, 'tool_runs', 1)
      redis.call('HINCRBY', sk, 'tool_runs', 1)
      if dur ~= '' then redis.call('LPUSH', K_LAT, dur) end
      local okv = 0
      if succ == '1' then okv = 1 end
      if succ ~= '' then
        ok = redis.call('HINCRBY', K_TOTALS, 'ok', okv)
        known = redis.call('HINCRBY', K_TOTALS, 'known', 1)
        redis.call('HINCRBY', sk, 'ok', okv)
        redis.call('HINCRBY', sk, 'known', 1)
      end
      if tool ~= '' then
        truns = redis.call('HINCRBY', K_RUNS, tool, 1)
        if succ ~= '' then
          tok = redis.call('HINCRBY', K_OK, tool, okv)
          tknown = redis.call('HINCRBY', K_KNOWN, tool, 1)
        end
      end
    elseif kind == 'e' then
      if acc ~= '' then
        redis.call('LPUSH', K_DEC, acc)
        local dk = P .. 'd:' .. sid
        redis.call('LPUSH', dk, acc)
        redis.call('LTRIM', dk, 0, 99)
        redis.call('PEXPIRE', dk, sttl)
      end
    elseif kind == 'p' then
      prompts = redis.call('HINCRBY', sk, 'prompts', 1)
    elseif kind == 's' then
      redis.call('HSET', sk, 'started', now_str)
    end
    redis.call('PEXPIRE', sk, sttl)
    redis.call('ZADD', K_SESS, now_ms, sid)
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
end
if need_lat then
  redis.call('LTRIM', K_LAT, 0, 99)
  redis.call('PEXPIRE', K_LAT, wttl)
end
if need_dec then
  redis.call('LTRIM', K_DEC, 0, 99)
  redis.call('PEXPIRE', K_DEC, wttl)
end
redis.call('HINCRBY', K_TOTALS, 'events', n)
redis.call('PEXPIRE', K_SESS, sttl)
return {total, lat_before, dec_before, out}
