-- reserve a batch: KEYS[1] event base; on one server, KEYS[1 + i] is the hold index key
--   of request i (its value: the event), written here; on a cluster those keys lie in
--   other slots, so only KEYS[1] is given and the client writes the index afterwards.
-- ARGV: the hold index value (the event; "<event>\31<bucket>" for a bucketed event), then
--   per request: body and d (both stored as they come: see _lib.lua), then what this
--   script reads, positional (no parsing): idempotency key, fingerprint, hold id,
--   customer, event limit ('' for none), units, deadline (microseconds), m, and
--   (stock key, quantity, limit or '') * m, folded by stock key and sorted: stock is
--   checked and moved per stock key (per pool), limits and counters per SKU (sku_of).
-- Each request is checked in full before anything of it is kept: a refusal changes
-- nothing, and so does a store in the way ({'corrupt', problem}: see the guards in
-- _lib.lua). The accepted requests' writes are made at the end (flush), one command per
-- key for the whole batch.
USES = {[K_STOCK] = true, [K_CNT] = true, [K_DUE] = true, [K_IDEM] = true}
local tag = ARGV[1]
local bucketed = string.find(tag, SEP, 1, true) ~= nil
local known = redis.call('EXISTS', K_DEF) == 1
if known and not bucketed and redis.call('EXISTS', K_NB) == 1 then
  -- routed as if the event had one bucket (a client that looked before its setup ended):
  -- refused, nothing written, so a customer never lands outside their bucket.
  known = false
end

local broken = broken_keys()
-- The requests as they come: positional, nothing to parse.
local reqs, keys, holds = {}, {}, {}
local a = 2
while a <= #ARGV do
  local m = tonumber(ARGV[a + 9])
  if not (m and m >= 1 and m <= 9999 and a + 9 + 3 * m <= #ARGV) then
    -- the requests cannot be told apart: none is read, nothing is written
    return redis.error_reply('CORRUPT reserve: a malformed batch')
  end
  local elimit = ARGV[a + 6]
  local x = {ARGV[a + 5], elimit == '' or tonumber(elimit), tonumber(ARGV[a + 7]),
    tonumber(ARGV[a + 8])}
  x.key, x.fp, x.id = ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  if x[D_ELIMIT] == true then
    x[D_ELIMIT] = false
  end
  local skus = {}
  for i = 1, 3 * m, 3 do
    local j = a + 9 + i
    local limit = ARGV[j + 2]
    skus[i], skus[i + 1] = ARGV[j], tonumber(ARGV[j + 1])
    skus[i + 2] = limit ~= '' and tonumber(limit)
  end
  x[D_SKUS] = skus
  x.body, x.d = ARGV[a], ARGV[a + 1]
  reqs[#reqs + 1] = not bad_head(x) and x or false
  keys[#keys + 1] = x.key
  holds[#holds + 1] = hkey(x.id)
  a = a + 10 + 3 * m
end
local n = #reqs
-- The batch's idempotency records, one read; its hold keys, one EXISTS (each looked at
-- on its own only when some of them exist).
local seen, taken = {}, {}
if not broken and n > 0 then
  local got = redis.call('HMGET', K_IDEM, unpack(keys))
  for i, key in ipairs(keys) do
    seen[key] = got[i]
  end
  if known and redis.call('EXISTS', unpack(holds)) > 0 then
    for _, h in ipairs(holds) do
      taken[h] = redis.call('EXISTS', h) == 1
    end
  end
end
local NEWIDEM = {}  -- the records this call writes
local FV = {}       -- stock key -> {'v:<key>', 'h:<key>', sku}: its stock fields, its SKU

local function reserve_one(x, index)
  if broken then
    return {'corrupt', broken}
  end
  if not x then
    return {'corrupt', 'a malformed request'}
  end
  local key, fp, id, cust = x.key, x.fp, x.id, x[D_CUST]
  local elimit, units, skus = x[D_ELIMIT], x[D_UNITS], x[D_SKUS]
  local prior = NEWIDEM[key] or seen[key]
  if prior then
    local cut = string.find(prior, SEP, 1, true)
    if not cut then
      return {'corrupt', K_IDEM .. ' ' .. key .. ' is malformed'}
    end
    if string.sub(prior, 1, cut - 1) ~= fp then
      return {'idempotency-conflict'}
    end
    local first = hkey(string.sub(prior, cut + 1))
    if HOLDS[first] then
      return {'same', view(HOLDS[first])}
    end
    if redis.call('TYPE', first)['ok'] ~= 'hash' then
      return {'corrupt', K_IDEM .. ' ' .. key .. ' names no hold'}
    end
    return {'same', stored_view(first)}
  end
  if not known then
    return {'unknown-event'}
  end
  local h = hkey(id)
  if HOLDS[h] or taken[h] then
    return {'hold-id'}
  end
  if bucketed and index then
    if not kind_ok(index, 'string') then  -- SET below overwrites any type; GET does not
      return {'corrupt', index .. ' is not a string'}
    end
    -- the id may be taken in another bucket of the event: the index knows
    local other = redis.call('GET', index)
    if other and other ~= tag then
      return {'hold-id'}
    end
  end
  -- Everything written below is planned and checked first: a refusal or a corrupt
  -- counter leaves nothing behind. The fields not known yet, one read per hash.
  local ce = cust .. SEP
  local cw, sw = {}, {}
  if elimit then
    cw[1] = ce
  end
  local stock = B[K_STOCK]
  for i = 1, #skus, 3 do
    local key = skus[i]
    local f = FV[key]
    if not f then
      f = {'v:' .. key, 'h:' .. key, sku_of(key)}
      FV[key] = f
    end
    cw[#cw + 1] = ce .. f[3]
    if not (stock and stock[f[1]] ~= nil and stock[f[2]] ~= nil) then
      sw[#sw + 1] = f[1]
      sw[#sw + 1] = f[2]
    end
  end
  fetch(K_CNT, cw)
  if #sw > 0 then
    fetch(K_STOCK, sw)
  end
  local p = plan()
  if elimit then
    local already = planned(p, K_CNT, ce) or '0'
    if not is_int(already) then
      return {'corrupt', K_CNT .. ' ' .. cust .. ': not an integer'}
    end
    if tonumber(already) + units > elimit then
      return {'limit-exceeded', elimit, text64(already), ''}
    end
  end
  -- A SKU's units add up over its pools. The entries of one SKU are adjacent, sorted:
  -- '<sku> <pool>' follows '<sku>' before any other id that starts with it, since ids are
  -- printable (no character below the space); a request naming an id that is not one is
  -- refused below anyway (no stock row: unknown-sku).
  local sku_q, last = 0, nil
  for i = 1, #skus, 3 do
    local q, limit = skus[i + 1], skus[i + 2]
    local sku = FV[skus[i]][3]
    sku_q = sku == last and sku_q + q or q
    last = sku
    if limit then
      local already = planned(p, K_CNT, cw[(elimit and 1 or 0) + (i + 2) / 3]) or '0'
      if not is_int(already) then
        return {'corrupt', K_CNT .. ' ' .. ce .. sku .. ': not an integer'}
      end
      if tonumber(already) + sku_q > limit then
        return {'limit-exceeded', limit, text64(already), sku}
      end
    end
  end
  for i = 1, #skus, 3 do
    local key, q = skus[i], skus[i + 1]
    local available = planned(p, K_STOCK, FV[key][1])
    if not available then
      return {'unknown-sku', key}
    end
    if not is_int(available) then
      return {'corrupt', K_STOCK .. ' v:' .. key .. ' is not an integer'}
    end
    if tonumber(available) < q then
      return {'sold-out', key, q, text64(available)}
    end
  end
  for i = 1, #skus, 3 do
    local f, q = FV[skus[i]], skus[i + 1]
    local bad = incr(p, K_STOCK, f[1], -q, true, true)
      or incr(p, K_STOCK, f[2], q, true, true)
      or incr(p, K_CNT, cw[(elimit and 1 or 0) + (i + 2) / 3], q, false, true)
    if bad then
      return {'corrupt', bad}
    end
  end
  if elimit then
    local bad = incr(p, K_CNT, ce, units, false, true)
    if bad then
      return {'corrupt', bad}
    end
  end
  commit(p)
  local t = {x = x, b = x.body, d = x.d, s = 'held'}
  HOLDS[h] = t
  HW[h] = {'b', x.body, 'd', x.d, 's', 'held'}
  HKEYS[#HKEYS + 1] = h
  ZADDS[#ZADDS + 1] = text64(x[D_DEADLINE])
  ZADDS[#ZADDS + 1] = id
  NEWIDEM[key] = fp .. SEP .. id
  IDEMS[#IDEMS + 1] = key
  IDEMS[#IDEMS + 1] = NEWIDEM[key]
  if index then
    SETS[#SETS + 1] = index
    SETS[#SETS + 1] = tag
  end
  return {'ok'}
end

local out = {}
for i = 1, n do
  out[i] = reserve_one(reqs[i], KEYS[1 + i])
end
flush()
return out
