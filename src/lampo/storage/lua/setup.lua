-- setup: KEYS[1] event base; on one server KEYS[2], the set of event ids (a cluster's
--   client adds the event there itself: that key lies in another slot).
-- ARGV: event id, definition JSON, n, (sku, allocation) * n, bucket count ('' for an
--   event of one bucket; for a bucketed event each bucket is set up with its shares).
-- Returns {'ok'} or {'exists', definition}: the caller compares the definitions. Checks
-- everything before its first write (_lib.lua, "Guards"): a CORRUPT error otherwise.
USES = {[K_DEF] = true, [K_STOCK] = true, [K_NB] = true}
local broken = broken_keys()
if not broken and KEYS[2] and not kind_ok(KEYS[2], 'set') then
  broken = KEYS[2] .. ' is not a set'
end
if broken then
  return redis.error_reply('CORRUPT ' .. broken)
end
local known = redis.call('GET', K_DEF)
if known then
  return {'exists', known}
end
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  local alloc = ARGV[5 + 2 * i]
  if not is_int(alloc) or negative(alloc) then
    return redis.error_reply('CORRUPT allocation ' .. tostring(alloc) .. ' is not a count')
  end
end
redis.call('SET', K_DEF, ARGV[2])
for i = 0, n - 1 do
  local sku, alloc = ARGV[4 + 2 * i], ARGV[5 + 2 * i]
  redis.call('HSET', K_STOCK, 'a:' .. sku, alloc, 'v:' .. sku, alloc, 'h:' .. sku, 0, 's:' .. sku, 0)
end
local nb = ARGV[4 + 2 * n]
if nb and nb ~= '' then
  redis.call('SET', K_NB, nb)
end
if KEYS[2] then
  redis.call('SADD', KEYS[2], ARGV[1])
end
return {'ok'}
