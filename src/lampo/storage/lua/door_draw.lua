-- The front door: keep an event's lottery unless one is kept (the first draw stands).
-- KEYS[1]: the event's base key. ARGV: seed, at (microseconds), registrations, winners...
-- 1 when kept, 0 when a draw was there already.
local base = KEYS[1]
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
local bad = guard(base .. ':dd', 'hash') or guard(base .. ':dw', 'zset')
if bad then
  return bad
end
if redis.call('EXISTS', base .. ':dd') == 1 then
  return 0
end
redis.call('HSET', base .. ':dd', 'seed', ARGV[1], 'at', ARGV[2], 'n', ARGV[3])
for i = 4, #ARGV do
  redis.call('ZADD', base .. ':dw', i - 3, ARGV[i])
end
return 1
