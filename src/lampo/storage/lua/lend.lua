-- transfer step 1, in the lending bucket: KEYS[1] lender base.
-- ARGV: per transfer: id, to (bucket), sku, units wanted.
-- Takes up to the units wanted off available and off this bucket's share of the
-- allocation, and records the transfer here (same atomic step); a unit never leaves
-- without its record. Returns the units taken per transfer (0: nothing, no record).
local out = {}
for a = 1, #ARGV, 4 do
  local id, to, sku, k = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local v = tonumber(redis.call('HGET', K_STOCK, 'v:' .. sku) or '0')
  if v < k then
    k = v
  end
  if k > 0 and redis.call('HEXISTS', K_XFER, id) == 0 then
    redis.call('HINCRBY', K_STOCK, 'v:' .. sku, -k)
    redis.call('HINCRBY', K_STOCK, 'a:' .. sku, -k)
    redis.call('HSET', K_XFER, id, to .. SEP .. sku .. SEP .. k)
    redis.call('INCR', K_XV)
  else
    k = 0
  end
  out[#out + 1] = k
end
return out
