#!lua flags=no-writes
-- The composite inputs of many sessions in one step (a page of a per-session
-- Background run), as composite.lua reads one.
-- KEYS: per session, its hash then its decision list
-- Returns 5 values per session: ok, known, tool_runs, accepted, decisions
local out = {}
for i = 1, #KEYS, 2 do
  local v = redis.call('HMGET', KEYS[i], 'ok', 'known', 'tool_runs')
  local d = redis.call('LRANGE', KEYS[i + 1], 0, 99)
  local accepted = 0
  for _, x in ipairs(d) do
    if x == '1' then accepted = accepted + 1 end
  end
  local n = #out
  out[n + 1] = tonumber(v[1]) or 0
  out[n + 2] = tonumber(v[2]) or 0
  out[n + 3] = tonumber(v[3]) or 0
  out[n + 4] = accepted
  out[n + 5] = #d
end
return out
