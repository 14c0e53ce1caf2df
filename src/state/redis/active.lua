#!lua flags=no-writes
-- Sessions touched within the session TTL, by the server's clock.
-- KEYS: sessions; ARGV: session_ttl_ms
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now_ms - tonumber(ARGV[1])), '+inf')
