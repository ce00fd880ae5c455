-- The front door: register an account for an event (storage/redis/door.py).
-- KEYS[1]: the event's base key. ARGV: account, record, n, then n pairs (kind, hash) of
-- the identities the event registers one account per. Checks everything, then writes:
-- '' when kept, else the identity found registered (account, then the kinds in order).
local base = KEYS[1]
local account = ARGV[1]
local n = tonumber(ARGV[3])
-- Guards (as lua/_lib.lua's): Redis does not roll a script back, so every key this
-- script writes is checked to be absent or of its type before the first write; a wrong
-- one is an error starting CORRUPT (storage/redis/door.py: CorruptStore), nothing written.
local function guard(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('CORRUPT ' .. key .. ' is a ' .. t .. ', not a ' .. want)
  end
  return nil
end
local bad = guard(base .. ':dr', 'hash')
for i = 0, n - 1 do
  bad = bad or guard(base .. ':di:' .. ARGV[4 + 2 * i], 'hash')
end
if bad then
  return bad
end
if redis.call('HEXISTS', base .. ':dr', account) == 1 then
  return 'account'
end
for i = 0, n - 1 do
  if redis.call('HEXISTS', base .. ':di:' .. ARGV[4 + 2 * i], ARGV[5 + 2 * i]) == 1 then
    return ARGV[4 + 2 * i]
  end
end
redis.call('HSET', base .. ':dr', account, ARGV[2])
for i = 0, n - 1 do
  redis.call('HSET', base .. ':di:' .. ARGV[4 + 2 * i], ARGV[5 + 2 * i], account)
end
return ''
