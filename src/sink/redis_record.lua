#!lua
-- RedisSink: records a batch of metrics in one step, all checks before the
-- first write. Metrics carrying a fencing generation are refused when a
-- newer generation was recorded for their scope; the others are written.
-- KEYS: latest, then per metric: its series, its scope's fence key
-- ARGV: n, then 8 per metric: field, member, at_ms, trim ("(" .. cutoff ms),
--       retention_ms, value, generation ("" unfenced), fence_ttl_ms ("0": none)
-- Returns {refused, first refused generation, newest it lost to}
local n = tonumber(ARGV[1])
local F = 8

local function kind(key)
  return redis.call('TYPE', key).ok
end

-- Generations are decimal integers of any length: compare them exactly.
local function older(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end

local function wrong(key)
  return redis.error_reply('CMWRONGTYPE ' .. key)
end

-- Checks, reads only.
local lt = kind(KEYS[1])
if lt ~= 'hash' and lt ~= 'none' then return wrong(KEYS[1]) end
local newest, dirty, ttl_of = {}, {}, {}
local accept = {}
local refused, first_gen, first_newest = 0, '', ''
for i = 0, n - 1 do
  local a = 1 + i * F
  local series, fence = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  local st = kind(series)
  if st ~= 'zset' and st ~= 'none' then return wrong(series) end
  local gen = ARGV[a + 7]
  accept[i] = true
  if gen ~= '' then
    if newest[fence] == nil then
      local cur = '0'
      local ft = kind(fence)
      if ft == 'string' then
        local v = redis.call('GET', fence)
        if string.match(v, '^[1-9]%d*$') then cur = v end
      elseif ft ~= 'none' then
        return wrong(fence)
      end
      newest[fence] = cur
    end
    if older(gen, newest[fence]) then
      accept[i] = false
      refused = refused + 1
      if first_gen == '' then
        first_gen, first_newest = gen, newest[fence]
      end
    elseif gen ~= newest[fence] then
      newest[fence] = gen
      dirty[fence] = true
      ttl_of[fence] = ARGV[a + 8]
    end
  end
end

-- Writes.
for i = 0, n - 1 do
  if accept[i] then
    local a = 1 + i * F
    local series = KEYS[2 + 2 * i]
    redis.call('HSET', KEYS[1], ARGV[a + 1], ARGV[a + 6])
    redis.call('ZADD', series, ARGV[a + 3], ARGV[a + 2])
    redis.call('ZREMRANGEBYSCORE', series, '-inf', ARGV[a + 4])
    redis.call('PEXPIRE', series, ARGV[a + 5])
  end
end
for fence, _ in pairs(dirty) do
  if ttl_of[fence] == '0' then
    redis.call('SET', fence, newest[fence])
  else
    redis.call('SET', fence, newest[fence], 'PX', ttl_of[fence])
  end
end
return {refused, first_gen, first_newest}
