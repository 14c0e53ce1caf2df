-- Microseconds since the last calculation started, by the server's clock; -1 if none.
-- KEYS: marker
local m = redis.call('GET', KEYS[1])
if not m then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return math.max(now - tonumber(m), 0)
