-- Releases the lock only if the caller's token still holds it.
-- KEYS: lock, log; ARGV: token, scope
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
local t = redis.call('TIME')
local stamp = t[1] .. string.format('%06d', tonumber(t[2]))
redis.call('LPUSH', KEYS[2], 'end ' .. stamp .. ' ' .. ARGV[1] .. ' ' .. ARGV[2])
redis.call('LTRIM', KEYS[2], 0, 999)
return 1
