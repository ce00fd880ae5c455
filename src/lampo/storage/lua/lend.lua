-- transfer step 1, in the lending bucket: KEYS[1] lender base.
-- ARGV: per transfer: id, to (bucket), sku, units wanted.
-- Takes up to the units wanted off available and off this bucket's share of the
-- allocation, and records the transfer here (same atomic step); a unit never leaves
-- without its record. Returns the units taken per transfer (0: nothing, no record).
-- Every transfer is checked before the first is written (_lib.lua, "Guards"): a store in
-- the way is a CORRUPT error and moves nothing.
USES = {[K_STOCK] = true, [K_XFER] = true, [K_XV] = true}
local broken = broken_keys()
if broken then
  return redis.error_reply('CORRUPT ' .. broken)
end
local p = plan()
local out, records = {}, {}
for a = 1, #ARGV, 4 do
  local id, to, sku, k = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local v = planned(p, K_STOCK, 'v:' .. sku)
  if not is_int(v) then  -- every bucket has a row for every SKU: missing is corrupt
    return redis.error_reply('CORRUPT ' .. K_STOCK .. ' v:' .. sku .. ' is missing or not an integer')
  end
  if tonumber(v) < k then
    k = tonumber(v)
  end
  if k > 0 and redis.call('HEXISTS', K_XFER, id) == 0 and not records[id] then
    local units = string.format('%d', k)
    local bad = incr(p, K_STOCK, 'v:' .. sku, neg(units), true, true)
      or incr(p, K_STOCK, 'a:' .. sku, neg(units), true, true)
      or incr_key(p, K_XV)
    if bad then
      return redis.error_reply('CORRUPT ' .. bad)
    end
    records[id] = to .. SEP .. sku .. SEP .. units
  else
    k = 0
  end
  out[#out + 1] = k
end
apply(p)
for id, record in pairs(records) do
  redis.call('HSET', K_XFER, id, record)
end
return out
