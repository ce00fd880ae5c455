-- reserve a batch: KEYS[1] event base; on one server, KEYS[1 + i] is the hold index key
--   of request i (its value: the event), written here; on a cluster those keys lie in
--   other slots, so only KEYS[1] is given and the client writes the index afterwards.
-- ARGV: the hold index value (the event; "<event>\31<bucket>" for a bucketed event), then
--   three arguments per request: head, body, tot (see _lib.lua; only the
--   short head is parsed here, body and tot are stored as they come).
-- Each request is checked in full before anything is written: a refusal changes nothing.
local bucketed = string.find(ARGV[1], SEP, 1, true) ~= nil
local known = redis.call('EXISTS', K_DEF) == 1
if known and not bucketed and redis.call('EXISTS', K_NB) == 1 then
  -- routed as if the event had one bucket (a client that looked before its setup ended):
  -- refused, nothing written, so a customer never lands outside their bucket.
  known = false
end

local function reserve_one(head, body, tot, index)
  local r = fields(head)
  local key, fp, id, cust, elimit = r[1], r[2], r[3], r[H_CUST], r[H_ELIMIT]
  local units, m = tonumber(r[H_UNITS]), tonumber(r[H_M])
  local seen = redis.call('HGET', K_IDEM, key)
  if seen then
    local cut = string.find(seen, SEP, 1, true)
    if string.sub(seen, 1, cut - 1) ~= fp then
      return {'idempotency-conflict'}
    end
    return {'same', view(hkey(string.sub(seen, cut + 1)))}
  end
  if not known then
    return {'unknown-event'}
  end
  local h = hkey(id)
  if redis.call('EXISTS', h) == 1 then
    return {'hold-id'}
  end
  if bucketed and index then
    -- the id may be taken in another bucket of the event: the index knows
    local other = redis.call('GET', index)
    if other and other ~= ARGV[1] then
      return {'hold-id'}
    end
  end
  if elimit ~= '' then
    local already = tonumber(redis.call('HGET', K_CNT, cust .. SEP) or '0')
    if already + units > tonumber(elimit) then
      return {'limit-exceeded', elimit, tostring(already), ''}
    end
  end
  for i = 0, m - 1 do
    local sku, q, limit = r[H_SKUS + 3 * i], tonumber(r[H_SKUS + 3 * i + 1]), r[H_SKUS + 3 * i + 2]
    if limit ~= '' then
      local already = tonumber(redis.call('HGET', K_CNT, cust .. SEP .. sku) or '0')
      if already + q > tonumber(limit) then
        return {'limit-exceeded', limit, tostring(already), sku}
      end
    end
  end
  for i = 0, m - 1 do
    local sku, q = r[H_SKUS + 3 * i], tonumber(r[H_SKUS + 3 * i + 1])
    local available = redis.call('HGET', K_STOCK, 'v:' .. sku)
    if not available then
      return {'unknown-sku', sku}
    end
    if tonumber(available) < q then
      return {'sold-out', sku, r[H_SKUS + 3 * i + 1], available}
    end
  end
  for i = 0, m - 1 do
    local sku, q = r[H_SKUS + 3 * i], tonumber(r[H_SKUS + 3 * i + 1])
    redis.call('HINCRBY', K_STOCK, 'v:' .. sku, -q)
    redis.call('HINCRBY', K_STOCK, 'h:' .. sku, q)
    redis.call('HINCRBY', K_CNT, cust .. SEP .. sku, q)
  end
  if elimit ~= '' then
    redis.call('HINCRBY', K_CNT, cust .. SEP, units)
  end
  redis.call('HSET', h, 'body', body, 'head', head, 'tot', tot, 'state', 'held',
    'payment_id', '', 'paid_at', '', 'ended_at', '', 'refunded_at', '')
  redis.call('ZADD', K_DUE, r[H_DEADLINE], id)
  redis.call('SADD', K_IDS, id)
  redis.call('HSET', K_IDEM, key, fp .. SEP .. id)
  if index then
    redis.call('SET', index, ARGV[1])
  end
  return {'ok'}
end

local out = {}
for a = 2, #ARGV, 3 do
  local n = #out + 1
  out[n] = reserve_one(ARGV[a], ARGV[a + 1], ARGV[a + 2], KEYS[1 + n])
end
return out
