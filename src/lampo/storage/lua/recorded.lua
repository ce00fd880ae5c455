-- Whether idempotency keys have a record, writing nothing (a read): KEYS[1] the event
-- base (of the customers' stock bucket); ARGV: the event (unused), then the keys.
-- Returns 1 or 0 per key.
local out = {}
for a = 2, #ARGV do
  out[#out + 1] = redis.call('HEXISTS', K_IDEM, ARGV[a])
end
return out
