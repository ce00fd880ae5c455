-- update a live event's definition: KEYS[1] event base (bucket 0 of a bucketed event).
-- ARGV: the definition the caller planned from (compared: another update in between
--   answers 'changed', nothing written), the new definition, bucketed ('1': bump the
--   definition version 'dv', copied to the other buckets afterwards; '' otherwise),
--   m, (sku, delta) * m: allocation and available move by delta (a SKU without a row
--   gets one first: a new SKU's delta is its allocation).
-- Everything is checked before anything is written: a delta below -available answers
-- {'short', sku, held + sold} and changes nothing; a store in the way (_lib.lua,
-- "Guards") a CORRUPT error. Returns {'ok', version} (the version is '0' for an event
-- of one bucket; the same definition again writes nothing).
USES = {[K_DEF] = true, [K_STOCK] = true, [K_DV] = true}
local broken = broken_keys()
if broken then
  return redis.error_reply('CORRUPT ' .. broken)
end
local known = redis.call('GET', K_DEF)
if not known then
  return {'unknown'}
end
if known ~= ARGV[1] then
  return {'changed'}
end
local m = tonumber(ARGV[4])
for i = 0, m - 1 do
  local sku, d = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  local row = redis.call('HMGET', K_STOCK, 'a:' .. sku, 'v:' .. sku, 'h:' .. sku, 's:' .. sku)
  local fresh = not (row[1] or row[2] or row[3] or row[4])
  if fresh then
    row = {'0', '0', '0', '0'}
  end
  for c = 1, 4 do
    if not is_int(row[c]) then
      return redis.error_reply('CORRUPT ' .. K_STOCK .. ' ' .. sku .. ': a column is missing or not an integer')
    end
  end
  local allocation, available = add64(row[1], d), add64(row[2], d)
  if not (allocation and available) then
    return redis.error_reply('CORRUPT ' .. K_STOCK .. ' ' .. sku .. ' + ' .. tostring(d) .. ' is not a 64-bit integer')
  end
  if negative(available) then
    return {'short', sku, text64(add64(row[3], row[4]) or '?')}
  end
end
if ARGV[3] == '1' and ARGV[2] ~= known then
  local bad = incr_key(plan(), K_DV)
  if bad then
    return redis.error_reply('CORRUPT ' .. bad)
  end
end
for i = 0, m - 1 do
  local sku, d = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  if redis.call('HEXISTS', K_STOCK, 'a:' .. sku) == 0 then
    redis.call('HSET', K_STOCK, 'a:' .. sku, 0, 'v:' .. sku, 0, 'h:' .. sku, 0, 's:' .. sku, 0)
  end
  if d ~= '0' then
    redis.call('HINCRBY', K_STOCK, 'a:' .. sku, d)
    redis.call('HINCRBY', K_STOCK, 'v:' .. sku, d)
  end
end
local version = '0'
if ARGV[2] ~= known then
  redis.call('SET', K_DEF, ARGV[2])
  if ARGV[3] == '1' then
    version = tostring(redis.call('INCR', K_DV))
  end
elseif ARGV[3] == '1' then
  version = redis.call('GET', K_DV) or '0'
end
return {'ok', version}
