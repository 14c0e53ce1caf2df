-- The composite's inputs in one step; records the scope's event count as
-- read (`reflected`).
-- KEYS: totals (global) or the session hash, then its decision list, then meta.
-- ARGV: known epoch, candidate epoch.
-- Reply: {0, ok, known, tool_runs, accepted, decisions}, or the epoch's reply.
local reset = cm_epoch(3, ARGV[1], ARGV[2])
if reset then return reset end
local v, bad = cm_read(1, 'HMGET', KEYS[1], 'ok', 'known', 'tool_runs', 'events')
if bad then return bad end
local d
d, bad = cm_read(2, 'LRANGE', KEYS[2], 0, 99)
if bad then return bad end
-- What this read saw, for "lock if dirty" (try_lock.lua): the scope's event
-- count. Written only where the hash exists, after every check.
if v[4] then redis.call('HSET', KEYS[1], 'reflected', v[4]) end
local accepted = 0
for _, x in ipairs(d) do
  if x == '1' then accepted = accepted + 1 end
end
return {0, tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0, accepted, #d}
