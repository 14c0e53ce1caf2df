#!lua flags=
-- The first lines of every script that checks the namespace's epoch (see
-- epoch.rs), and the helpers that name a wrong-typed key. The shebang declares the flags: none, so the script may write,
-- the server refuses it before it starts when it is out of memory, and every
-- key it touches must be declared in KEYS (no cross-slot keys).

-- The reply to return when the key KEYS[i] does not hold type `want` (or
-- nothing), else nil.
local function cm_wrongtype(i, want)
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('CMWRONGTYPE ' .. i)
  end
  return nil
end

-- Runs a read command on KEYS[i] (the command and its arguments follow i).
-- Returns its reply, or nil and the reply to return: CMWRONGTYPE i when the
-- key holds another type (the check costs no extra command).
local function cm_read(i, ...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r['err'] then
    if string.find(r['err'], 'WRONGTYPE', 1, true) then
      return nil, redis.error_reply('CMWRONGTYPE ' .. i)
    end
    return nil, r
  end
  return r, nil
end

-- Checks the namespace's epoch, KEYS[meta] (a string that never expires)
-- against the caller's `known` one. Returns nil when they match. Otherwise a
-- reply to return at once, having applied nothing else: {1, candidate} when
-- the key was missing (the state was lost; it now holds `candidate`), or
-- {2, current} when it holds another epoch (another worker saw the loss first).
local function cm_epoch(meta, known, candidate)
  local cur, bad = cm_read(meta, 'GET', KEYS[meta])
  if bad then return bad end
  if not cur then
    redis.call('SET', KEYS[meta], candidate)
    return {1, candidate}
  end
  if cur ~= known then
    return {2, cur}
  end
  return nil
end

