#!lua flags=no-writes
-- Microseconds since the last calculation started, by the server's clock; -1
-- if none (or the marker holds something this crate did not write).
-- KEYS: marker
--
-- No epoch check (unlike try_lock.lua): the script only reads the marker,
-- and after a state reset the marker is the fresh state's (none, or one set
-- by a worker that saw the reset), which is the true answer either way.
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return -1 end
local m = redis.call('GET', KEYS[1])
if not string.match(m, '^%d+$') or #m > 16 then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return math.max(now - tonumber(m), 0)
