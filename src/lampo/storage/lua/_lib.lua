-- Shared by every lampo script: prepended to each one when it is loaded.
-- KEYS[1] is the event's key base, "<prefix>{<event>}": every key of one event shares
-- its hash slot, so a script stays atomic on a Redis Cluster too.
-- A hold is a hash written by reserve.lua: its immutable body (JSON, read by Python
-- only), its state, and precomputed strings the scripts need (folded SKU quantities,
-- totals keys and amounts, negated amounts), so no script ever does money arithmetic:
-- Lua numbers are doubles and redis.call formats them with 14 digits.
local base = KEYS[1]
local K_STOCK = base .. ':stock'  -- a:<sku> allocation, v: available, h: held, s: sold
local K_CNT = base .. ':cnt'      -- <customer>\31<sku> units held or bought ('' sku: event)
local K_DUE = base .. ':due'      -- held hold ids scored by deadline (microseconds)
local K_IDS = base .. ':ids'      -- every hold id of the event
local K_IDEM = base .. ':idem'    -- idempotency key -> <fingerprint>\31<hold id>
local K_DEF = base .. ':def'      -- the event's definition (JSON)
local K_OU, K_OA = base .. ':ou', base .. ':oa'  -- orders, amount by order key
local K_LU, K_LA = base .. ':lu', base .. ':la'  -- units, amount by line key
local SEP = '\31'

local function hkey(id)
  return base .. ':h:' .. id
end

local function load(h)
  local flat = redis.call('HGETALL', h)
  local t = {}
  for i = 1, #flat, 2 do
    t[flat[i]] = flat[i + 1]
  end
  return t, flat
end

-- The hold's units go back to available, out of held ('h') or sold ('s').
local function to_pool(t, from)
  for i = 1, tonumber(t.n) do
    local sku, q = t['s' .. i], tonumber(t['q' .. i])
    redis.call('HINCRBY', K_STOCK, 'v:' .. sku, q)
    redis.call('HINCRBY', K_STOCK, from .. ':' .. sku, -q)
    redis.call('HINCRBY', K_CNT, t.cust .. SEP .. sku, -q)
  end
  if t.evc == '1' then
    redis.call('HINCRBY', K_CNT, t.cust .. SEP, -tonumber(t.units))
  end
end

-- Count the order into the live totals (neg = '') or out of them (neg = 'n').
local function count(t, neg)
  redis.call('HINCRBY', K_OU, t.ok, neg == '' and 1 or -1)
  redis.call('HINCRBY', K_OA, t.ok, t[neg .. 'amt'])
  for i = 1, tonumber(t.nl) do
    local lk = t['lk' .. i]
    redis.call('HINCRBY', K_LU, lk, (neg == '' and 1 or -1) * tonumber(t['lu' .. i]))
    redis.call('HINCRBY', K_LA, lk, t[neg .. 'la' .. i])
  end
end

-- A held hold ends (released or expired): stock back, off the deadline index.
local function end_held(h, t, id, state, now_iso)
  to_pool(t, 'h')
  redis.call('HSET', h, 'state', state, 'ended_at', now_iso)
  redis.call('ZREM', K_DUE, id)
end
