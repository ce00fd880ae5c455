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

-- An integer negated: a string as a string (no arithmetic on doubles), a number (a small
-- one, see small below) as a number.
local function neg(s)
  if type(s) == 'number' then
    return 0 - s
  elseif s == '0' then
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
  if t.head and t.tot then
    t.h, t.t = fields(t.head), fields(t.tot)
  end
  return t
end

-- Guards. Redis does not roll a script back: an error halfway leaves what was written
-- before it. So every script checks everything its writes could fail on before its first
-- write (docs/architecture.md, "Atomicity of scripts"): the type of every key it touches,
-- that every field it counts on is an integer (and present where it must be), and that no
-- counter leaves the signed 64-bit range HINCRBY and INCR keep. The event's numbers are
-- bounded by the domain, so none of this fails in a sound store; it guards against what
-- the domain cannot see. A request that fails a check is answered {'corrupt', problem}
-- and nothing is written for it; a script with no such answer returns an error instead,
-- before its first write.

-- The keys of an event (or a bucket) and their types; absent is fine for each.
local KINDS = {
  {K_STOCK, 'hash'}, {K_CNT, 'hash'}, {K_DUE, 'zset'}, {K_IDS, 'set'}, {K_IDEM, 'hash'},
  {K_DEF, 'string'}, {K_OU, 'hash'}, {K_OA, 'hash'}, {K_LU, 'hash'}, {K_LA, 'hash'},
  {K_NB, 'string'}, {K_XFER, 'hash'}, {K_XIN, 'set'}, {K_XV, 'string'}, {K_DV, 'string'},
}

-- Whether key is absent or of the type want.
local function kind_ok(key, want)
  local t = redis.call('TYPE', key)['ok']
  return t == 'none' or t == want
end

-- The event's keys a script touches, set at its top (USES = {[K_STOCK] = true, ...}), so
-- a key it never touches cannot stop it.
local USES = {}

-- The first of the keys the script uses of a wrong type, as a problem; nil if none.
-- Looked up once per script call (before its first write): no script changes a key's type.
local broken_found = nil
local function broken_keys()
  if broken_found == nil then
    broken_found = false
    for _, kw in ipairs(KINDS) do
      if USES[kw[1]] and not kind_ok(kw[1], kw[2]) then
        broken_found = kw[1] .. ' is not a ' .. kw[2]
        break
      end
    end
  end
  return broken_found or nil
end

-- A signed 64-bit integer as two exact doubles: value = high * 1e9 + low, 0 <= low < 1e9
-- (Lua numbers are doubles: exact to 2^53 only, so no arithmetic on the whole value).
local MAX_HI, MAX_LO = 9223372036, 854775807   -- 2^63 - 1
local MIN_HI, MIN_LO = -9223372037, 145224192   -- -2^63 = -9223372037e9 + 145224192

local function in_range(hi, lo)
  return (hi < MAX_HI or (hi == MAX_HI and lo <= MAX_LO))
    and (hi > MIN_HI or (hi == MIN_HI and lo >= MIN_LO))
end

-- s as (high, low) if it is an integer as Redis writes one (no sign but '-', no leading
-- zero) within the 64-bit range; nil otherwise.
local function int64(s)
  if type(s) ~= 'string' or #s > 20 then
    return nil
  end
  if s == '0' then
    return 0, 0
  end
  local minus, digits = string.match(s, '^(%-?)([1-9]%d*)$')
  if not digits then
    return nil
  end
  if #digits > 19 then
    return nil
  end
  local hi = tonumber(string.sub(digits, 1, -10)) or 0
  local lo = tonumber(string.sub(digits, -9))
  if minus == '-' then
    hi, lo = -hi, -lo
    if lo < 0 then
      hi, lo = hi - 1, lo + 1e9
    end
  end
  if not in_range(hi, lo) then
    return nil
  end
  return hi, lo
end

-- (high, low) as the integer string Redis would write.
local function str64(hi, lo)
  if hi >= 0 then
    return hi == 0 and string.format('%d', lo) or string.format('%d%09d', hi, lo)
  end
  local mh, ml = -hi, 0                       -- the magnitude, -(hi * 1e9 + lo)
  if lo > 0 then
    mh, ml = -hi - 1, 1e9 - lo
  end
  return '-' .. (mh == 0 and string.format('%d', ml) or string.format('%d%09d', mh, ml))
end

-- s as a number if it is an integer as Redis writes one ('-' and digits, no leading zero:
-- not "007", "1e3", " 5", "0x10" or "inf"), of at most 14 characters: then it is below
-- 10^14, and so is any sum of a few, exact in a double (the common case, kept fast). A
-- number (a running sum) is taken as is.
local find = string.find
local function small(s)
  if type(s) == 'number' then
    return s
  end
  if type(s) == 'string' and #s <= 14 and (s == '0' or find(s, '^%-?[1-9]%d*$')) then
    return tonumber(s)
  end
  return nil
end

-- A delta from a hold's fields as a number when it is a whole number below 10^14 (any
-- spelling: it reaches HINCRBY as Lua writes the number), else as it is (add64 then
-- refuses what is no integer).
local function num(s)
  local x = tonumber(s)
  if x and x == x and x < 1e14 and x > -1e14 and x == math.floor(x) then
    return x
  end
  return s
end

-- v as Redis writes it (a number as its digits).
local function text64(v)
  return type(v) == 'number' and string.format('%d', v) or v
end

-- a + b for integers (canonical strings, or running sums kept as numbers), or nil when
-- either is not one or the sum leaves 64 bits. The sum is a number while it is below
-- 10^14 (exact, no text to build), else a string.
local function add64(a, b)
  local x, y = small(a), small(b)
  if x and y then
    local sum = x + y
    if sum < 1e14 and sum > -1e14 then
      return sum
    end
  end
  local ah, al = int64(text64(a))
  local bh, bl = int64(text64(b))
  if not ah or not bh then
    return nil
  end
  local hi, lo = ah + bh, al + bl
  if lo >= 1e9 then
    hi, lo = hi + 1, lo - 1e9
  end
  if not in_range(hi, lo) then
    return nil
  end
  return str64(hi, lo)
end

-- Whether v is an integer add64 takes; whether it is below zero.
local function is_int(v)
  return small(v) ~= nil or int64(v) ~= nil
end

local function negative(v)
  if type(v) == 'number' then
    return v < 0
  end
  return string.sub(v, 1, 1) == '-'
end

-- The HINCRBY/INCR calls of one request, planned: each target read and checked, each
-- running result kept (at[key][field], false when absent; field '' for a string key), so
-- two changes of one field add up before anything is written. ops holds (key, field,
-- delta) flat, field false for an INCR of a string key.
local function plan()
  return {ops = {}, n = 0, at = {}}
end

-- The values planned for the fields of key.
local function planned_of(p, key)
  local at = p.at[key]
  if not at then
    at = {}
    p.at[key] = at
  end
  return at
end

-- The value a field will have once the plan so far is applied (false: absent).
local function planned(p, key, field)
  local at = planned_of(p, key)
  local v = at[field]
  if v == nil then
    v = redis.call('HGET', key, field)
    at[field] = v
  end
  return v
end

-- Plan HINCRBY key field delta (an integer: a string, or a small number). must: the field
-- has to exist (a stock column); floor: the result may not fall below zero (stock and
-- counters). The problem as text, or nil. On every request's path, so the common case
-- (a small value and a small delta) is written out here rather than through add64.
local function incr(p, key, field, delta, must, floor)
  local at = p.at[key]
  if not at then
    at = {}
    p.at[key] = at
  end
  local cur = at[field]
  if cur == nil then
    cur = redis.call('HGET', key, field)
  end
  if not cur then
    if must then
      return key .. ' has no field ' .. field
    end
    cur = 0
  end
  local sum
  if type(delta) == 'number' then
    local x = cur
    if type(x) ~= 'number' then  -- small (above), inline
      x = #cur <= 14 and (cur == '0' or find(cur, '^%-?[1-9]%d*$')) and tonumber(cur) or nil
    end
    if x then
      sum = x + delta
      if sum >= 1e14 or sum <= -1e14 then
        sum = nil
      end
    end
  end
  if sum == nil then
    sum = add64(cur, delta)
    if not sum then
      return key .. ' ' .. field .. ': ' .. tostring(cur) .. ' + ' .. tostring(delta)
        .. ' is not a 64-bit integer'
    end
  end
  if floor and negative(sum) then
    return key .. ' ' .. field .. ' would fall below zero'
  end
  at[field] = sum
  local ops, n = p.ops, p.n
  ops[n + 1], ops[n + 2], ops[n + 3] = key, field, delta
  p.n = n + 3
  return nil
end

-- Plan INCR of a string key (a version): an integer below 2^63 - 1, or absent.
local function incr_key(p, key)
  local at = planned_of(p, key)
  local cur = at['']
  if cur == nil then
    cur = redis.call('GET', key) or '0'
  end
  local sum = add64(cur, '1')
  if not sum then
    return key .. ': ' .. tostring(cur) .. ' + 1 is not a 64-bit integer'
  end
  at[''] = sum
  local ops, n = p.ops, p.n
  ops[n + 1], ops[n + 2], ops[n + 3] = key, false, 1
  p.n = n + 3
  return nil
end

-- Write a checked plan.
local function apply(p)
  local ops = p.ops
  for i = 1, p.n, 3 do
    if ops[i + 1] then
      redis.call('HINCRBY', ops[i], ops[i + 1], ops[i + 2])
    else
      redis.call('INCR', ops[i])
    end
  end
end

-- s as a number if it is a count from 1 to 9999 (of SKUs, of lines), else nil.
local function count_of(s)
  if type(s) ~= 'string' or not string.find(s, '^[1-9]%d?%d?%d?$') then
    return nil
  end
  return tonumber(s)
end

-- A stored hold's head and tot, checked for their shape (the fields every script indexes
-- are there): the problem as text, or nil.
local function unsound(t)
  if not (t.state and t.head and t.tot and t.body) then
    return 'the hold lacks its state, head, tot or body'
  end
  local hd, tt = t.h, t.t
  local m, nl = count_of(hd[H_M]), count_of(tt[T_NL])
  if not (m and nl and #hd == H_SKUS - 1 + 3 * m and #tt == T_LINES - 1 + 3 * nl) then
    return 'the hold has a malformed head or tot'
  end
  if not tonumber(hd[H_DEADLINE]) then
    return 'the hold has a malformed deadline'
  end
  -- the numbers (units, quantities, amounts) are checked where they are used: by incr
  return nil
end

-- The hold at h, loaded and checked: (t, nil) for a sound hold or none (t.state nil),
-- (nil, problem) for a key of another type, a malformed hold, or an event key of a wrong
-- type (the transition could not be written whole).
local function load_checked(h)
  local broken = broken_keys()
  if broken then
    return nil, broken
  end
  if not kind_ok(h, 'hash') then
    return nil, h .. ' is not a hash'
  end
  local t = load(h)
  if next(t) == nil then
    return t, nil
  end
  local problem = unsound(t)
  if problem then
    return nil, problem
  end
  return t, nil
end

-- Plan the hold's units back to available, out of held ('h') or sold ('s'), with its
-- customer's counters.
local function to_pool(p, t, from)
  local hd = t.h
  local cust = hd[H_CUST]
  for i = 0, tonumber(hd[H_M]) - 1 do
    local sku, q = hd[H_SKUS + 3 * i], num(hd[H_SKUS + 3 * i + 1])
    local bad = incr(p, K_STOCK, 'v:' .. sku, q, true, true)
      or incr(p, K_STOCK, from .. ':' .. sku, neg(q), true, true)
      or incr(p, K_CNT, cust .. SEP .. sku, neg(q), true, true)
    if bad then
      return bad
    end
  end
  if hd[H_ELIMIT] ~= '' then
    return incr(p, K_CNT, cust .. SEP, neg(num(hd[H_UNITS])), true, true)
  end
  return nil
end

-- Plan the hold's units from one stock column to another ('h' to 's': paid).
local function move(p, t, from, to)
  local hd = t.h
  for i = 0, tonumber(hd[H_M]) - 1 do
    local sku, q = hd[H_SKUS + 3 * i], num(hd[H_SKUS + 3 * i + 1])
    local bad = incr(p, K_STOCK, from .. ':' .. sku, neg(q), true, true)
      or incr(p, K_STOCK, to .. ':' .. sku, q, true, true)
    if bad then
      return bad
    end
  end
  return nil
end

-- Plan the order into the live totals (sign 1) or out of them (sign -1: the order was
-- counted in, so its rows must be there, and cannot fall below zero).
local function count(p, t, sign)
  local tt = t.t
  local out = sign == -1
  local function signed(s)
    local v = num(s)
    return out and neg(v) or v
  end
  local nl = tonumber(tt[T_NL])
  local bad = incr(p, K_OU, tt[T_OK], signed('1'), out, out)
    or incr(p, K_OA, tt[T_OK], signed(tt[T_AMT]), out, out)
  for i = 0, nl - 1 do
    local lk, lu, la = tt[T_LINES + 3 * i], tt[T_LINES + 3 * i + 1], tt[T_LINES + 3 * i + 2]
    bad = bad or incr(p, K_LU, lk, signed(lu), out, out) or incr(p, K_LA, lk, signed(la), out, out)
  end
  return bad
end

-- A held hold ends (released or expired): stock back, off the deadline index. Checked in
-- full first: the problem as text (nothing written), or nil (done).
local function end_held(h, t, id, state, now_iso)
  local p = plan()
  local bad = to_pool(p, t, 'h')
  if bad then
    return bad
  end
  apply(p)
  redis.call('HSET', h, 'state', state, 'ended_at', now_iso)
  redis.call('ZREM', K_DUE, id)
  return nil
end
