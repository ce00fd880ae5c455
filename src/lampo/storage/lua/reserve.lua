-- reserve a batch: KEYS[1] event base, KEYS[2] the hold index (hold id -> event).
-- ARGV: event, then one argument per request, its fields each ended by \30: key,
--   fingerprint, hold id, customer, event limit ('' for none), units, deadline
--   (microseconds), m, (sku, quantity, limit) * m (SKUs folded and sorted), then
--   (field, value) pairs: the hold's hash. (One argument each keeps the client's
--   encoding cheap.)
-- Each request is checked in full before anything is written: a refusal changes nothing.
local function reserve_one(text)
  local r = {}
  for part in string.gmatch(text, '([^\30]*)\30') do
    r[#r + 1] = part
  end
  local key, fp, id, cust, elimit = r[1], r[2], r[3], r[4], r[5]
  local units, deadline, m = tonumber(r[6]), r[7], tonumber(r[8])
  local s0 = 9  -- (sku, quantity, limit) * m, then the hold's hash fields
  local seen = redis.call('HGET', K_IDEM, key)
  if seen then
    local cut = string.find(seen, SEP, 1, true)
    if string.sub(seen, 1, cut - 1) ~= fp then
      return {'idempotency-conflict'}
    end
    local _, flat = load(hkey(string.sub(seen, cut + 1)))
    return {'same', flat}
  end
  if redis.call('EXISTS', K_DEF) == 0 then
    return {'unknown-event'}
  end
  local h = hkey(id)
  if redis.call('EXISTS', h) == 1 then
    return {'hold-id'}
  end
  if elimit ~= '' then
    local already = tonumber(redis.call('HGET', K_CNT, cust .. SEP) or '0')
    if already + units > tonumber(elimit) then
      return {'limit-exceeded', elimit, tostring(already), ''}
    end
  end
  for i = 0, m - 1 do
    local sku, q, limit = r[s0 + 3 * i], tonumber(r[s0 + 3 * i + 1]), r[s0 + 3 * i + 2]
    if limit ~= '' then
      local already = tonumber(redis.call('HGET', K_CNT, cust .. SEP .. sku) or '0')
      if already + q > tonumber(limit) then
        return {'limit-exceeded', limit, tostring(already), sku}
      end
    end
  end
  for i = 0, m - 1 do
    local sku, q = r[s0 + 3 * i], tonumber(r[s0 + 3 * i + 1])
    local available = redis.call('HGET', K_STOCK, 'v:' .. sku)
    if not available then
      return {'unknown-sku', sku}
    end
    if tonumber(available) < q then
      return {'sold-out', sku, r[s0 + 3 * i + 1], available}
    end
  end
  for i = 0, m - 1 do
    local sku, q = r[s0 + 3 * i], tonumber(r[s0 + 3 * i + 1])
    redis.call('HINCRBY', K_STOCK, 'v:' .. sku, -q)
    redis.call('HINCRBY', K_STOCK, 'h:' .. sku, q)
    redis.call('HINCRBY', K_CNT, cust .. SEP .. sku, q)
  end
  if elimit ~= '' then
    redis.call('HINCRBY', K_CNT, cust .. SEP, units)
  end
  redis.call('HSET', h, unpack(r, s0 + 3 * m))
  redis.call('ZADD', K_DUE, deadline, id)
  redis.call('SADD', K_IDS, id)
  redis.call('HSET', K_IDEM, key, fp .. SEP .. id)
  redis.call('HSET', KEYS[2], id, ARGV[1])
  return {'ok'}
end

local out = {}
for i = 2, #ARGV do
  out[i - 1] = reserve_one(ARGV[i])
end
return out
