-- At connect: the namespace's epoch, created with ARGV[1] if missing.
-- KEYS: meta
local cur, bad = cm_read(1, 'GET', KEYS[1])
if bad then return bad end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return cur
