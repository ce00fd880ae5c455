-- The front door: keep an event's lottery unless one is kept (the first draw stands).
-- KEYS[1]: the event's base key. ARGV: seed, at (microseconds), registrations, winners...
-- 1 when kept, 0 when a draw was there already.
local base = KEYS[1]
if redis.call('EXISTS', base .. ':dd') == 1 then
  return 0
end
redis.call('HSET', base .. ':dd', 'seed', ARGV[1], 'at', ARGV[2], 'n', ARGV[3])
for i = 4, #ARGV do
  redis.call('ZADD', base .. ':dw', i - 3, ARGV[i])
end
return 1
