-- transfer step 2, in the borrowing bucket: KEYS[1] borrower base.
-- ARGV: per transfer: id, sku, units. Adds the units to available and to this bucket's
-- share, once per transfer id (a repeat, by recovery or a racing client, adds nothing).
-- Returns 1 per transfer applied now, 0 per one applied before. Every transfer is
-- checked before the first is written (_lib.lua, "Guards"): a store in the way is a
-- CORRUPT error and adds nothing.
USES = {[K_STOCK] = true, [K_XIN] = true, [K_XV] = true}
local broken = broken_keys()
if broken then
  return redis.error_reply('CORRUPT ' .. broken)
end
local p = plan()
local out, ids, now = {}, {}, {}
for a = 1, #ARGV, 3 do
  local id, sku, k = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  if not now[id] and redis.call('SISMEMBER', K_XIN, id) == 0 then
    local bad = incr(p, K_STOCK, 'v:' .. sku, k, true, true)
      or incr(p, K_STOCK, 'a:' .. sku, k, true, true)
      or incr_key(p, K_XV)
    if bad then
      return redis.error_reply('CORRUPT ' .. bad)
    end
    now[id] = true
    ids[#ids + 1] = id
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if #ids > 0 then
  redis.call('SADD', K_XIN, unpack(ids))
  apply(p)
end
return out
