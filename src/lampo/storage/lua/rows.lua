-- a bucket b > 0 of a bucketed event, around an update: KEYS[1] bucket base.
-- ARGV: definition version ('' : leave the definition), definition, m, sku * m.
-- Gives each SKU without a row an empty one (a, v, h, s all 0: no unit is created, and
-- reads count a SKU only once bucket 0 has it), before bucket 0 puts new SKUs on sale.
-- Keeps the copy of the definition only if the version is newer than the bucket's, so
-- a slow client never puts back an older one. Returns 1 if the definition was written.
-- Checked before its first write (_lib.lua, "Guards"): a store in the way is a CORRUPT
-- error.
USES = {[K_STOCK] = true, [K_DV] = true, [K_DEF] = true}
local broken = broken_keys()
local current = redis.call('GET', K_DV) or '0'
if not broken and not is_int(current) then
  broken = K_DV .. ' is not an integer'
end
if broken then
  return redis.error_reply('CORRUPT ' .. broken)
end
local m = tonumber(ARGV[3])
local missing = {}
for i = 1, m do
  local sku = ARGV[3 + i]
  local row = redis.call('HMGET', K_STOCK, 'a:' .. sku, 'v:' .. sku, 'h:' .. sku, 's:' .. sku)
  if not (row[1] or row[2] or row[3] or row[4]) then
    missing[#missing + 1] = sku
  elseif not (is_int(row[1]) and is_int(row[2]) and is_int(row[3]) and is_int(row[4])) then
    return redis.error_reply('CORRUPT ' .. K_STOCK .. ' ' .. sku .. ': a column is missing or not an integer')
  end
end
for _, sku in ipairs(missing) do
  redis.call('HSET', K_STOCK, 'a:' .. sku, 0, 'v:' .. sku, 0, 'h:' .. sku, 0, 's:' .. sku, 0)
end
if ARGV[1] ~= '' and tonumber(ARGV[1]) > tonumber(current) then
  redis.call('SET', K_DEF, ARGV[2])
  redis.call('SET', K_DV, ARGV[1])
  return 1
end
return 0
