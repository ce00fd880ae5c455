-- Shared by every lampo script: prepended to each one when it is loaded.
-- KEYS[1] is the key base of one event (or of one stock bucket of a bucketed event),
-- "<prefix>{<event>}" ("<prefix>{<event> #<b>}" for bucket b > 0): every key of it shares
-- its hash slot, so a script stays atomic on a Redis Cluster too. Each bucket holds the
-- keys below for its own customers, and its own share of every SKU's allocation.
-- A hold is a hash written by reserve.lua: 'body' (the immutable hold, JSON, read by
-- Python only), 'state', 'payment_id', 'paid_at', 'ended_at', 'refunded_at', and two
-- strings of \30-ended fields the scripts need, computed by Python so no script ever
-- does money arithmetic (Lua numbers are doubles; amounts stay strings here):
--   'head' (as sent to reserve.lua): key, fingerprint, hold id, customer, event limit
--     ('' for none), units, deadline (microseconds), m, (sku, quantity, limit) * m
--     with the SKUs folded and sorted;
--   'tot': currency, amount, order key, nl, (line key, units, amount) * nl.
local base = KEYS[1]
local K_STOCK = base .. ':stock'  -- a:<sku> allocation, v: available, h: held, s: sold
local K_CNT = base .. ':cnt'      -- <customer>\31<sku> units held or bought ('' sku: event)
local K_DUE = base .. ':due'      -- held hold ids scored by deadline (microseconds)
local K_IDS = base .. ':ids'      -- every hold id of the event
local K_IDEM = base .. ':idem'    -- idempotency key -> <fingerprint>\31<hold id>
local K_DEF = base .. ':def'      -- the event's definition (JSON)
local K_OU, K_OA = base .. ':ou', base .. ':oa'  -- orders, amount by order key
local K_LU, K_LA = base .. ':lu', base .. ':la'  -- units, amount by line key
-- Stock buckets only (see docs/storage-redis-postgres.md, "Hot events: stock buckets"):
local K_NB = base .. ':nb'        -- the event's bucket count (absent: one bucket)
local K_XFER = base .. ':xfer'    -- transfers lent, not yet settled: id -> to\31sku\31units
local K_XIN = base .. ':xin'      -- ids of the transfers this bucket has received
local K_XV = base .. ':xv'        -- bumped by every transfer step on this bucket
local K_DV = base .. ':dv'        -- the definition's version, bumped by each update
local SEP = '\31'
local H_CUST, H_ELIMIT, H_UNITS, H_DEADLINE, H_M, H_SKUS = 4, 5, 6, 7, 8, 9
local T_CUR, T_AMT, T_OK, T_NL, T_LINES = 1, 2, 3, 4, 5

local function hkey(id)
  return base .. ':h:' .. id
end

-- The fields of a \30-ended string.
local function fields(text)
  local r = {}
  for part in string.gmatch(text, '([^\30]*)\30') do
    r[#r + 1] = part
  end
  return r
end

-- An integer string negated, as a string (no arithmetic on doubles).
local function neg(s)
  if s == '0' then
    return s
  elseif string.sub(s, 1, 1) == '-' then
    return string.sub(s, 2)
  end
  return '-' .. s
end

-- What Python reads of a hold, in this order (redis.py's _hold_from_view).
local function view(h)
  return redis.call('HMGET', h, 'body', 'state', 'payment_id', 'paid_at', 'ended_at',
    'refunded_at')
end

-- The hold's hash as a table, its head and tot parsed.
local function load(h)
  local flat = redis.call('HGETALL', h)
  local t = {}
  for i = 1, #flat, 2 do
    t[flat[i]] = flat[i + 1]
  end
  if t.head then
    t.h, t.t = fields(t.head), fields(t.tot)
  end
  return t
end

-- The hold's units go back to available, out of held ('h') or sold ('s').
local function to_pool(t, from)
  local hd = t.h
  local cust = hd[H_CUST]
  for i = 0, tonumber(hd[H_M]) - 1 do
    local sku, q = hd[H_SKUS + 3 * i], tonumber(hd[H_SKUS + 3 * i + 1])
    redis.call('HINCRBY', K_STOCK, 'v:' .. sku, q)
    redis.call('HINCRBY', K_STOCK, from .. ':' .. sku, -q)
    redis.call('HINCRBY', K_CNT, cust .. SEP .. sku, -q)
  end
  if hd[H_ELIMIT] ~= '' then
    redis.call('HINCRBY', K_CNT, cust .. SEP, -tonumber(hd[H_UNITS]))
  end
end

-- Count the order into the live totals (sign 1) or out of them (sign -1).
local function count(t, sign)
  local tt = t.t
  local amt = tt[T_AMT]
  redis.call('HINCRBY', K_OU, tt[T_OK], sign)
  redis.call('HINCRBY', K_OA, tt[T_OK], sign == 1 and amt or neg(amt))
  for i = 0, tonumber(tt[T_NL]) - 1 do
    local lk, lu, la = tt[T_LINES + 3 * i], tt[T_LINES + 3 * i + 1], tt[T_LINES + 3 * i + 2]
    redis.call('HINCRBY', K_LU, lk, sign * tonumber(lu))
    redis.call('HINCRBY', K_LA, lk, sign == 1 and la or neg(la))
  end
end

-- A held hold ends (released or expired): stock back, off the deadline index.
local function end_held(h, t, id, state, now_iso)
  to_pool(t, 'h')
  redis.call('HSET', h, 'state', state, 'ended_at', now_iso)
  redis.call('ZREM', K_DUE, id)
end
