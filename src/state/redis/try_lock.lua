#!lua
-- Lock, "last computed" marker and fencing generation in one atomic step, on
-- the server's clock. Every check comes before the first write, so a key of
-- the wrong type never makes the script fail half-way.
-- KEYS: lock, marker, fence, log[, the scope's data hash: totals or the
--       session's hash, with "lock if dirty"]
-- ARGV: token, lease_ms, min_interval_us, scope_ttl_ms (0: none), scope,
--       '1' to lock only if dirty
-- Returns {outcome, since_us, generation, foreign}: outcome 0 acquired,
-- 1 held, 2 too soon, 3 clean (with "lock if dirty": the last composite read
-- of the scope saw every event recorded in it; composite.lua writes
-- `reflected`, record.lua counts `events`); since_us -1 when no calculation
-- is remembered;
-- generation 0 unless acquired; foreign: keys found holding something this
-- crate did not write, and neutralised: 1 lock TTL capped at the lease,
-- 2 marker replaced, 4 fence replaced, 8 log replaced.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stamp = t[1] .. string.format('%06d', tonumber(t[2]))
local lease = tonumber(ARGV[2])
local foreign = 0

-- Checks, reads only.
local since, marker_ok = -1, true
local mtype = redis.call('TYPE', KEYS[2]).ok
if mtype == 'string' then
  local m = redis.call('GET', KEYS[2])
  if string.match(m, '^%d+$') and #m <= 16 then
    since = math.max(now - tonumber(m), 0)
  else
    marker_ok = false
  end
elseif mtype ~= 'none' then
  marker_ok = false
end

local ltype = redis.call('TYPE', KEYS[1]).ok
if ltype ~= 'none' then
  -- Held. Our tokens are 16 lowercase hex digits and always set with a TTL;
  -- anything else (a crashed tool's `SET lock x`, a hash) gets its TTL capped
  -- at the lease, so it blocks calculations for at most one lease.
  local ours = false
  if ltype == 'string' then
    local v = redis.call('GET', KEYS[1])
    ours = #v == 16 and string.match(v, '^[0-9a-f]+$') ~= nil
  end
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl < 0 or (not ours and pttl > lease) then
    redis.call('PEXPIRE', KEYS[1], lease)
    foreign = 1
  end
  return {1, since, 0, foreign}
end
if ARGV[6] == '1' then
  local dirty = true
  if redis.call('TYPE', KEYS[5]).ok == 'hash' then
    local c = redis.call('HMGET', KEYS[5], 'events', 'reflected')
    local events, seen = tonumber(c[1] or '0'), tonumber(c[2] or '0')
    -- Anything unreadable counts as dirty: the calculation will say why.
    if events and seen then dirty = events > seen end
  elseif redis.call('EXISTS', KEYS[5]) == 0 then
    dirty = false
  end
  if not dirty then return {3, since, 0, 0} end
end
if since >= 0 and since < tonumber(ARGV[3]) then return {2, since, 0, 0} end

local prev, fence_ok = 0, true
local ftype = redis.call('TYPE', KEYS[3]).ok
if ftype == 'string' then
  local f = redis.call('GET', KEYS[3])
  -- At most 2^53 - 1 (exact in Lua's numbers).
  if string.match(f, '^%d+$') and #f <= 16 and tonumber(f) < 9007199254740991 then
    prev = tonumber(f)
  else
    fence_ok = false
  end
elseif ftype ~= 'none' then
  fence_ok = false
end
local log_type = redis.call('TYPE', KEYS[4]).ok
local log_ok = log_type == 'list' or log_type == 'none'

-- Writes. The generation only grows: one more than the last, or the
-- server's time in microseconds if that is larger (so it keeps growing when
-- the fence key was lost).
local gen = math.max(prev + 1, now)
local gs = string.format('%.0f', gen)
if not marker_ok then foreign = foreign + 2 end
if not fence_ok then foreign = foreign + 4 end
if not log_ok then
  foreign = foreign + 8
  redis.call('DEL', KEYS[4])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[4] == '0' then
  redis.call('SET', KEYS[2], stamp)
  redis.call('SET', KEYS[3], gs)
else
  redis.call('SET', KEYS[2], stamp, 'PX', ARGV[4])
  redis.call('SET', KEYS[3], gs, 'PX', ARGV[4])
end
redis.call('LPUSH', KEYS[4], 'start ' .. stamp .. ' ' .. ARGV[1] .. ' ' .. ARGV[5] .. ' ' .. gs)
redis.call('LTRIM', KEYS[4], 0, 999)
return {0, 0, gs, foreign}
