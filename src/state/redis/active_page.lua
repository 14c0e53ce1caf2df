#!lua flags=no-writes
-- One page of the sessions touched within the session TTL, by the server's
-- clock: one ZSCAN step from a cursor (so a session present for the whole
-- listing is returned at least once, whatever is added meanwhile).
-- KEYS: sessions; ARGV: cursor, count, session_ttl_ms
-- Returns {next cursor ("0": done), {session ids}}
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local oldest = now_ms - tonumber(ARGV[3])
local r = redis.call('ZSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local items, out = r[2], {}
for i = 1, #items, 2 do
  if tonumber(items[i + 1]) > oldest then out[#out + 1] = items[i] end
end
return {r[1], out}
