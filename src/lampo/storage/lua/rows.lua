-- a bucket b > 0 of a bucketed event, around an update: KEYS[1] bucket base.
-- ARGV: definition version ('' : leave the definition), definition, m, sku * m.
-- Gives each SKU without a row an empty one (a, v, h, s all 0: no unit is created, and
-- reads count a SKU only once bucket 0 has it), before bucket 0 puts new SKUs on sale.
-- Keeps the copy of the definition only if the version is newer than the bucket's, so
-- a slow client never puts back an older one. Returns 1 if the definition was written.
local m = tonumber(ARGV[3])
for i = 1, m do
  local sku = ARGV[3 + i]
  if redis.call('HEXISTS', K_STOCK, 'a:' .. sku) == 0 then
    redis.call('HSET', K_STOCK, 'a:' .. sku, 0, 'v:' .. sku, 0, 'h:' .. sku, 0, 's:' .. sku, 0)
  end
end
if ARGV[1] ~= '' and tonumber(ARGV[1]) > tonumber(redis.call('GET', K_DV) or '0') then
  redis.call('SET', K_DEF, ARGV[2])
  redis.call('SET', K_DV, ARGV[1])
  return 1
end
return 0
