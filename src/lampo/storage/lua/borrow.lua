-- transfer step 2, in the borrowing bucket: KEYS[1] borrower base.
-- ARGV: per transfer: id, sku, units. Adds the units to available and to this bucket's
-- share, once per transfer id (a repeat, by recovery or a racing client, adds nothing).
-- Returns 1 per transfer applied now, 0 per one applied before.
local out = {}
for a = 1, #ARGV, 3 do
  local id, sku, k = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  if redis.call('SADD', K_XIN, id) == 1 then
    redis.call('HINCRBY', K_STOCK, 'v:' .. sku, k)
    redis.call('HINCRBY', K_STOCK, 'a:' .. sku, k)
    redis.call('INCR', K_XV)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
