-- The front door: register an account for an event (storage/redis/door.py).
-- KEYS[1]: the event's base key. ARGV: account, record, n, then n pairs (kind, hash) of
-- the identities the event registers one account per. Checks everything, then writes:
-- '' when kept, else the identity found registered (account, then the kinds in order).
local base = KEYS[1]
local account = ARGV[1]
local n = tonumber(ARGV[3])
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
