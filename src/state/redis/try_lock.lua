-- Lock and "last computed" marker in one atomic step, on the server's clock.
-- KEYS: lock, marker, log
-- ARGV: token, lease_ms, min_interval_us, marker_ttl_ms (0: none), scope
-- Returns {outcome, since_us}: outcome 0 acquired, 1 held, 2 too soon;
-- since_us -1 when no calculation is remembered.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stamp = t[1] .. string.format('%06d', tonumber(t[2]))
local m = redis.call('GET', KEYS[2])
local since = -1
if m then since = math.max(now - tonumber(m), 0) end
if redis.call('EXISTS', KEYS[1]) == 1 then return {1, since} end
if since >= 0 and since < tonumber(ARGV[3]) then return {2, since} end
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if ARGV[4] == '0' then
  redis.call('SET', KEYS[2], stamp)
else
  redis.call('SET', KEYS[2], stamp, 'PX', ARGV[4])
end
redis.call('LPUSH', KEYS[3], 'start ' .. stamp .. ' ' .. ARGV[1] .. ' ' .. ARGV[5])
redis.call('LTRIM', KEYS[3], 0, 999)
return {0, 0}
