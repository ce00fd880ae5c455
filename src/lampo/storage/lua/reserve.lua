-- reserve a batch: KEYS[1] event base; on one server, KEYS[1 + i] is the hold index key
--   of request i (its value: the event), written here; on a cluster those keys lie in
--   other slots, so only KEYS[1] is given and the client writes the index afterwards.
-- ARGV: the hold index value (the event; "<event>\31<bucket>" for a bucketed event), then
--   three arguments per request: head, body, tot (see _lib.lua; only the
--   short head is parsed here, body and tot are stored as they come).
-- Each request is checked in full before anything is written: a refusal changes nothing,
-- and so does a store in the way ({'corrupt', problem}: see the guards in _lib.lua).
USES = {[K_STOCK] = true, [K_CNT] = true, [K_DUE] = true, [K_IDS] = true, [K_IDEM] = true}
local bucketed = string.find(ARGV[1], SEP, 1, true) ~= nil
local known = redis.call('EXISTS', K_DEF) == 1
if known and not bucketed and redis.call('EXISTS', K_NB) == 1 then
  -- routed as if the event had one bucket (a client that looked before its setup ended):
  -- refused, nothing written, so a customer never lands outside their bucket.
  known = false
end

local broken = broken_keys()

local function reserve_one(head, body, tot, index)
  if broken then
    return {'corrupt', broken}
  end
  local r = fields(head)
  local key, fp, id, cust, elimit = r[1], r[2], r[3], r[H_CUST], r[H_ELIMIT]
  -- what the writes below use (tot and body are stored as they come; every script that
  -- reads a hold checks its shape first: load_checked)
  local m, units = count_of(r[H_M]), small(r[H_UNITS])
  if not (m and units and #r == H_SKUS - 1 + 3 * m and tonumber(r[H_DEADLINE])) then
    return {'corrupt', 'a malformed request'}
  end
  local seen = redis.call('HGET', K_IDEM, key)
  if seen then
    local cut = string.find(seen, SEP, 1, true)
    if not cut then
      return {'corrupt', K_IDEM .. ' ' .. key .. ' is malformed'}
    end
    if string.sub(seen, 1, cut - 1) ~= fp then
      return {'idempotency-conflict'}
    end
    local first = hkey(string.sub(seen, cut + 1))
    if redis.call('TYPE', first)['ok'] ~= 'hash' then
      return {'corrupt', K_IDEM .. ' ' .. key .. ' names no hold'}
    end
    return {'same', view(first)}
  end
  if not known then
    return {'unknown-event'}
  end
  local h = hkey(id)
  if redis.call('EXISTS', h) == 1 then
    return {'hold-id'}
  end
  if bucketed and index then
    if not kind_ok(index, 'string') then  -- SET below overwrites any type; GET does not
      return {'corrupt', index .. ' is not a string'}
    end
    -- the id may be taken in another bucket of the event: the index knows
    local other = redis.call('GET', index)
    if other and other ~= ARGV[1] then
      return {'hold-id'}
    end
  end
  -- Everything written below is planned and checked first: a refusal or a corrupt
  -- counter leaves nothing behind.
  local p = plan()
  if elimit ~= '' then
    local already = planned(p, K_CNT, cust .. SEP) or '0'
    if not (is_int(already) and is_int(elimit)) then
      return {'corrupt', K_CNT .. ' ' .. cust .. ': not an integer'}
    end
    if tonumber(already) + units > tonumber(elimit) then
      return {'limit-exceeded', elimit, already, ''}
    end
  end
  for i = 0, m - 1 do
    local sku, q, limit = r[H_SKUS + 3 * i], r[H_SKUS + 3 * i + 1], r[H_SKUS + 3 * i + 2]
    if limit ~= '' then
      local already = planned(p, K_CNT, cust .. SEP .. sku) or '0'
      if not (is_int(already) and is_int(limit) and is_int(q)) then
        return {'corrupt', K_CNT .. ' ' .. cust .. SEP .. sku .. ': not an integer'}
      end
      if tonumber(already) + tonumber(q) > tonumber(limit) then
        return {'limit-exceeded', limit, already, sku}
      end
    end
  end
  for i = 0, m - 1 do
    local sku, q = r[H_SKUS + 3 * i], r[H_SKUS + 3 * i + 1]
    local available = planned(p, K_STOCK, 'v:' .. sku)
    if not available then
      return {'unknown-sku', sku}
    end
    if not (is_int(available) and is_int(q)) then
      return {'corrupt', K_STOCK .. ' v:' .. sku .. ' is not an integer'}
    end
    if tonumber(available) < tonumber(q) then
      return {'sold-out', sku, q, available}
    end
  end
  for i = 0, m - 1 do
    local sku, q = r[H_SKUS + 3 * i], num(r[H_SKUS + 3 * i + 1])
    local bad = incr(p, K_STOCK, 'v:' .. sku, neg(q), true, true)
      or incr(p, K_STOCK, 'h:' .. sku, q, true, true)
      or incr(p, K_CNT, cust .. SEP .. sku, q, false, true)
    if bad then
      return {'corrupt', bad}
    end
  end
  if elimit ~= '' then
    local bad = incr(p, K_CNT, cust .. SEP, units, false, true)
    if bad then
      return {'corrupt', bad}
    end
  end
  apply(p)
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
