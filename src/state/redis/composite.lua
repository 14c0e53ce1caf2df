-- The composite's inputs in one step.
-- KEYS: totals (global) or the session hash, then its decision list.
local v = redis.call('HMGET', KEYS[1], 'ok', 'known', 'tool_runs')
local d = redis.call('LRANGE', KEYS[2], 0, 99)
local accepted = 0
for _, x in ipairs(d) do
  if x == '1' then accepted = accepted + 1 end
end
return {tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0, accepted, #d}
