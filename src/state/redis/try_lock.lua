-- Lock, "last computed" marker and fencing generation in one atomic step, on
-- the server's clock. Runs with prelude.lua in front (cm_epoch).
--
-- KEYS: 1 lock, 2 marker, 3 fence, 4 log, 5 meta (the namespace's epoch)
--       [, 6 the scope's data hash: totals or the session's hash, with
--       "lock if dirty"]
-- ARGV: 1 token, 2 lease_ms, 3 min_interval_us, 4 scope_ttl_ms (0: none),
--       5 scope, 6 '1' to lock only if dirty, 7 known epoch, 8 candidate epoch
--
-- Reply: the epoch's reply when the namespace's state was lost since this
-- worker last looked ({1, epoch} or {2, epoch}, see prelude.lua; nothing
-- else is read or written: no lock, no marker, no generation), else
-- {0, outcome, since_us, generation, foreign}:
--   outcome 0 acquired, 1 held, 2 too soon, 3 clean (with "lock if dirty":
--     the last composite read of the scope saw every event recorded in it;
--     composite.lua writes `reflected`, record.lua counts `events`);
--   since_us -1 when no calculation is remembered;
--   generation 0 unless acquired;
--   foreign: keys found holding something this crate did not write, and
--     neutralised: 1 lock TTL capped at the lease, 2 marker replaced,
--     4 fence replaced, 8 log replaced.
--
-- Phases: 1 the epoch; 2 read the marker; 3 the lock held?; 4 dirty?;
-- 5 too soon?; 6 read the fence and the log; 7 the writes. Every check comes
-- before the first write, so a key of the wrong type never makes the script
-- fail half-way.

local lock_key, marker_key, fence_key, log_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, lease_ms, min_interval = ARGV[1], ARGV[2], tonumber(ARGV[3])
local lease = tonumber(lease_ms)
local scope_ttl, scope_name, only_if_dirty = ARGV[4], ARGV[5], ARGV[6] == '1'
local known_epoch, candidate_epoch = ARGV[7], ARGV[8]

-- 1. The epoch, as record.lua checks it: a worker that has not yet seen the
-- state reset takes no lock and stamps no marker on the fresh state; it gets
-- the reset to report (and adopts the new epoch).
local reset = cm_epoch(5, known_epoch, candidate_epoch)
if reset then return reset end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stamp = t[1] .. string.format('%06d', tonumber(t[2]))
local foreign = 0

-- 2. The marker: how long ago the last calculation started (-1: none).
local since, marker_ok = -1, true
local marker_type = redis.call('TYPE', marker_key).ok
if marker_type == 'string' then
  local m = redis.call('GET', marker_key)
  if string.match(m, '^%d+$') and #m <= 16 then
    since = math.max(now - tonumber(m), 0)
  else
    marker_ok = false
  end
elseif marker_type ~= 'none' then
  marker_ok = false
end

-- 3. Held. Our tokens are 16 lowercase hex digits and always set with a TTL;
-- anything else (a crashed tool's `SET lock x`, a hash) gets its TTL capped
-- at the lease, so it blocks calculations for at most one lease.
local lock_type = redis.call('TYPE', lock_key).ok
if lock_type ~= 'none' then
  local ours = false
  if lock_type == 'string' then
    local v = redis.call('GET', lock_key)
    ours = #v == 16 and string.match(v, '^[0-9a-f]+$') ~= nil
  end
  local pttl = redis.call('PTTL', lock_key)
  if pttl < 0 or (not ours and pttl > lease) then
    redis.call('PEXPIRE', lock_key, lease_ms)
    foreign = 1
  end
  return {0, 1, since, 0, foreign}
end

-- 4. "Lock if dirty": clean when the last composite read saw every event.
if only_if_dirty then
  local data_key = KEYS[6]
  local dirty = true
  if redis.call('TYPE', data_key).ok == 'hash' then
    local c = redis.call('HMGET', data_key, 'events', 'reflected')
    local events, seen = tonumber(c[1] or '0'), tonumber(c[2] or '0')
    -- Anything unreadable counts as dirty: the calculation will say why.
    if events and seen then dirty = events > seen end
  elseif redis.call('EXISTS', data_key) == 0 then
    dirty = false
  end
  if not dirty then return {0, 3, since, 0, 0} end
end

-- 5. Too soon after the last calculation.
if since >= 0 and since < min_interval then return {0, 2, since, 0, 0} end

-- 6. The fence (the last generation handed out) and the log's type.
local prev, fence_ok = 0, true
local fence_type = redis.call('TYPE', fence_key).ok
if fence_type == 'string' then
  local f = redis.call('GET', fence_key)
  -- At most 2^53 - 1 (exact in Lua's numbers).
  if string.match(f, '^%d+$') and #f <= 16 and tonumber(f) < 9007199254740991 then
    prev = tonumber(f)
  else
    fence_ok = false
  end
elseif fence_type ~= 'none' then
  fence_ok = false
end
local log_type = redis.call('TYPE', log_key).ok
local log_ok = log_type == 'list' or log_type == 'none'

-- 7. Writes. The generation only grows: one more than the last, or the
-- server's time in microseconds if that is larger (so it keeps growing when
-- the fence key was lost).
local gen = math.max(prev + 1, now)
local gen_str = string.format('%.0f', gen)
if not marker_ok then foreign = foreign + 2 end
if not fence_ok then foreign = foreign + 4 end
if not log_ok then
  foreign = foreign + 8
  redis.call('DEL', log_key)
end
redis.call('SET', lock_key, token, 'PX', lease_ms)
if scope_ttl == '0' then
  redis.call('SET', marker_key, stamp)
  redis.call('SET', fence_key, gen_str)
else
  redis.call('SET', marker_key, stamp, 'PX', scope_ttl)
  redis.call('SET', fence_key, gen_str, 'PX', scope_ttl)
end
redis.call('LPUSH', log_key, 'start ' .. stamp .. ' ' .. token .. ' ' .. scope_name .. ' ' .. gen_str)
redis.call('LTRIM', log_key, 0, 999)
return {0, 0, 0, gen_str, foreign}
