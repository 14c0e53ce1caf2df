#!lua
-- Releases the lock only if the caller's token still holds it. Checks come
-- before the first write (a wrong-typed lock or log never fails half-way).
-- KEYS: lock, log; ARGV: token, scope
--
-- No epoch check (unlike try_lock.lua): a release only deletes a lock that
-- holds the caller's own token, which is the caller's to release in any
-- epoch. After a reset that took the lock with the state it finds none,
-- writes nothing and answers 0, as when the lease ran out.
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return 0 end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local log_type = redis.call('TYPE', KEYS[2]).ok
redis.call('DEL', KEYS[1])
if log_type == 'list' or log_type == 'none' then
  local t = redis.call('TIME')
  local stamp = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('LPUSH', KEYS[2], 'end ' .. stamp .. ' ' .. ARGV[1] .. ' ' .. ARGV[2])
  redis.call('LTRIM', KEYS[2], 0, 999)
end
return 1
