-- At connect: the namespace's epoch, created with ARGV[1] if missing.
-- KEYS: meta
local bad = cm_wrongtype(1, 'string')
if bad then return bad end
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return cur
