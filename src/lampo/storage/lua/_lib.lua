-- Shared by every lampo script: prepended to each one when it is loaded.
-- KEYS[1] is the key base of one event (or of one stock bucket of a bucketed event),
-- "<prefix>{<event>}" ("<prefix>{<event> #<b>}" for bucket b > 0): every key of it shares
-- its hash slot, so a script stays atomic on a Redis Cluster too. Each bucket holds the
-- keys below for its own customers, and its own share of every SKU's allocation.
-- A hold is a hash written by reserve.lua with only the fields that exist: 'b' (the
-- immutable hold, JSON, read by Python only), 'd' (the request as reserve.lua got it,
-- JSON, read by the scripts only), 's' (state), and once they are set 'p' (payment id),
-- 'pa' (paid at), 'e' (ended at), 'r' (refunded at), ISO texts. 'd' is the array
--   {idempotency key, fingerprint, hold id, customer, event limit (false: none), units,
--    deadline (microseconds), skus, currency, amount, order key, lines}
-- with skus flat: (stock key, quantity, limit or false) * m, folded by stock key and
-- sorted (a SKU's shared pool under its id, a reserved pool under '<sku> <pool>'; the
-- limit is the SKU's, whatever the pool; data written before pools has SKU ids only), and
-- lines flat: (line key, units, amount) * nl. Python computes it all, so no script does
-- money arithmetic (Lua numbers are doubles): amounts are texts, counts are numbers.
-- Layout 2 (issue 14); a store written by layout 1 ('head', 'tot', 'body', 'state', ...)
-- is refused when it is opened (storage/redis/client.py).
-- One file of over 500 lines on purpose: Redis runs a script as one text, so what the
-- transitions share (the checks before the first write, the plan-then-write helpers) is
-- prepended whole; split into several files it would still be one text at run time.
local base = KEYS[1]
local K_STOCK = base .. ':stock'  -- a:<stock key> allocation, v: available, h: held, s: sold
local K_CNT = base .. ':cnt'      -- <customer>\31<sku> units held or bought ('' sku: event)
local K_DUE = base .. ':due'      -- held hold ids scored by deadline (microseconds)
local K_IDEM = base .. ':idem'    -- idempotency key -> <fingerprint>\31<hold id>: one per hold
local K_DEF = base .. ':def'      -- the event's definition (JSON)
local K_OU, K_OA = base .. ':ou', base .. ':oa'  -- orders, amount by order key
local K_LU, K_LA = base .. ':lu', base .. ':la'  -- units, amount by line key
-- Stock buckets only (see docs/storage-redis-postgres.md, "Hot events: stock buckets"):
local K_NB = base .. ':nb'        -- the event's bucket count (absent: one bucket)
local K_XFER = base .. ':xfer'    -- transfers lent, not yet settled: id -> to\31key\31units
local K_XIN = base .. ':xin'      -- ids of the transfers this bucket has received
local K_XV = base .. ':xv'        -- bumped by every transfer step on this bucket
local K_DV = base .. ':dv'        -- the definition's version, bumped by each update
local SEP = '\31'
local D_CUST, D_ELIMIT, D_UNITS, D_DEADLINE, D_SKUS = 1, 2, 3, 4, 5
local D_CUR, D_AMT, D_OK, D_LINES = 6, 7, 8, 9

local function hkey(id)
  return base .. ':h:' .. id
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

-- The writes of a script call, held back until every request of it was checked and
-- planned, then written by flush() with one command per key: a batch of N requests
-- costs a few calls for its counters, not N times each. Until then the values a
-- request leaves are kept here, so the next request of the batch plans on them.
local B = {}        -- key -> field -> value once the accepted requests are written
local DIRTY = {}    -- key -> field -> true: fields to write
local DKEYS = {}    -- the keys of DIRTY, in order
local HOLDS = {}    -- hold key -> the hold as this call left it (loaded or written)
local HW = {}       -- hold key -> (field, value) flat to write
local HKEYS = {}    -- the keys of HW, in order
local ZADDS, ZREMS = {}, {}  -- deadline index: (score, id) flat to add; ids to remove
local IDEMS = {}    -- K_IDEM: (key, value) flat to write
local SETS = {}     -- string keys to write: (key, value) flat

-- What Python reads of a hold, in this order (codec.py's _hold_from_view): false for a
-- field not set (a nil reply).
local function view(t)
  return {t.b or false, t.s or false, t.p or false, t.pa or false, t.e or false,
    t.r or false}
end

-- t[key] for flush(), a table made on first use, key then added to the list order.
local function pending(t, order, key)
  local v = t[key]
  if not v then
    v = {}
    t[key] = v
    order[#order + 1] = key
  end
  return v
end

-- Set fields of a hold, written by flush(): hset(h, t, 's', 'paid', 'p', pid, ...). HW[h]
-- is the flat list of HSET's arguments (a field set twice: the last one counts).
local function hset(h, t, ...)
  local w = pending(HW, HKEYS, h)
  local n = #w
  local args = {...}
  for i = 1, #args, 2 do
    t[args[i]] = args[i + 1]
    w[n + i], w[n + i + 1] = args[i], args[i + 1]
  end
end

-- What Python reads of a stored hold (view, read from the store).
local function stored_view(h)
  return redis.call('HMGET', h, 'b', 's', 'p', 'pa', 'e', 'r')
end

-- The hold's hash as a table (as this call left it), its 'd' decoded into x.
local function load(h)
  local t = HOLDS[h]
  if t then
    return t
  end
  local flat = redis.call('HGETALL', h)
  t = {}
  for i = 1, #flat, 2 do
    t[flat[i]] = flat[i + 1]
  end
  if t.d then
    local ok, x = pcall(cjson.decode, t.d)
    if ok and type(x) == 'table' then
      t.x = x
    end
  end
  HOLDS[h] = t
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
  {K_STOCK, 'hash'}, {K_CNT, 'hash'}, {K_DUE, 'zset'}, {K_IDEM, 'hash'},
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

-- The SKU of a stock key: the key up to its first space (ids hold none: domain/channels.py).
local function sku_of(key)
  local cut = find(key, ' ', 1, true)
  return cut and string.sub(key, 1, cut - 1) or key
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
-- delta) flat, field false for an INCR of a string key. A plan is written either at
-- once (apply) or with the rest of the call's writes (commit, then flush).
local function plan()
  return {ops = {}, n = 0, at = {}}
end

-- t[key], a table made on first use.
local function sub(t, key)
  local v = t[key]
  if not v then
    v = {}
    t[key] = v
  end
  return v
end

-- The values planned for the fields of key.
local function planned_of(p, key)
  return sub(p.at, key)
end

-- The fields of key known to this call (B[key]).
local function known_of(key)
  return sub(B, key)
end

-- The value of a field before this plan: as the call's earlier requests left it, else
-- as stored (false: absent).
local function before(key, field)
  local b = known_of(key)
  local v = b[field]
  if v == nil then
    v = redis.call('HGET', key, field)
    b[field] = v
  end
  return v
end

-- Read the fields of key not known yet with one HMGET.
local function fetch(key, flds)
  local b = known_of(key)
  local want = {}
  for _, f in ipairs(flds) do
    if b[f] == nil then
      want[#want + 1] = f
    end
  end
  if #want > 0 then
    local got = redis.call('HMGET', key, unpack(want))
    for i, f in ipairs(want) do
      b[f] = got[i]
    end
  end
end

-- The value a field will have once the plan so far is applied (false: absent).
local function planned(p, key, field)
  local at = planned_of(p, key)
  local v = at[field]
  if v == nil then
    v = before(key, field)
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
    cur = before(key, field)
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

-- Write a checked plan now (the scripts that move a few counters once); a later plan of
-- the call starts from the values written.
local function apply(p)
  local ops = p.ops
  for i = 1, p.n, 3 do
    if ops[i + 1] then
      redis.call('HINCRBY', ops[i], ops[i + 1], ops[i + 2])
      B[ops[i]][ops[i + 1]] = p.at[ops[i]][ops[i + 1]]
    else
      redis.call('INCR', ops[i])
    end
  end
end

-- Keep a checked plan of hash fields for flush(): the next requests plan on its values.
local function commit(p)
  local ops, at = p.ops, p.at
  for i = 1, p.n, 3 do
    local key, field = ops[i], ops[i + 1]
    B[key][field] = at[key][field]
    pending(DIRTY, DKEYS, key)[field] = true
  end
end

-- Write everything the call kept back, one command per key. Nothing here can fail: every
-- key's type and every value was checked before it was kept.
local function flush()
  for _, key in ipairs(DKEYS) do
    local args, b = {}, B[key]
    for field in pairs(DIRTY[key]) do
      args[#args + 1] = field
      args[#args + 1] = text64(b[field])
    end
    redis.call('HSET', key, unpack(args))
  end
  for _, h in ipairs(HKEYS) do
    redis.call('HSET', h, unpack(HW[h]))
  end
  if #ZADDS > 0 then
    redis.call('ZADD', K_DUE, unpack(ZADDS))
  end
  if #ZREMS > 0 then
    redis.call('ZREM', K_DUE, unpack(ZREMS))
  end
  if #IDEMS > 0 then
    redis.call('HSET', K_IDEM, unpack(IDEMS))
  end
  if #SETS > 0 then
    redis.call('MSET', unpack(SETS))
  end
end

-- Whether v is a whole number from lo to hi (a count from a hold's 'd').
local function whole(v, lo, hi)
  return type(v) == 'number' and v == math.floor(v) and v >= lo and v <= hi
end

-- The part of a hold's 'd' (decoded) or of a request reserve.lua reads, checked for its
-- shape: the problem as text, or nil. The counts the writes use are whole numbers of the
-- domain's range.
local function bad_head(x)
  if type(x) ~= 'table' then
    return 'the hold data is not an array'
  end
  local skus = x[D_SKUS]
  if not (type(x[D_CUST]) == 'string' and whole(x[D_UNITS], 1, 1e13)
      and whole(x[D_DEADLINE], 0, 4e15) and type(skus) == 'table' and #skus > 0
      and #skus % 3 == 0 and (x[D_ELIMIT] == false or whole(x[D_ELIMIT], 0, 1e13))) then
    return 'the hold data is malformed'
  end
  for i = 1, #skus, 3 do
    local limit = skus[i + 2]
    if not (type(skus[i]) == 'string' and whole(skus[i + 1], 1, 1e13)
        and (limit == false or whole(limit, 0, 1e13))) then
      return 'the hold data has a malformed sku'
    end
  end
  return nil
end

-- A hold's 'd' (decoded) checked for its shape: the problem as text, or nil. The amounts
-- are texts (checked where they are used: by incr).
local function bad_request(x)
  local bad = bad_head(x)
  if bad then
    return bad
  end
  local lines = x[D_LINES]
  if not (type(lines) == 'table' and #lines > 0 and #lines % 3 == 0
      and type(x[D_CUR]) == 'string' and type(x[D_AMT]) == 'string'
      and type(x[D_OK]) == 'string') then
    return 'the hold data is malformed'
  end
  for i = 1, #lines, 3 do
    if not (type(lines[i]) == 'string' and whole(lines[i + 1], 1, 1e13)
        and type(lines[i + 2]) == 'string') then
      return 'the hold data has a malformed line'
    end
  end
  return nil
end

-- A stored hold checked for its shape: the problem as text, or nil.
local function unsound(t)
  if not (t.s and t.d and t.b) then
    if t.head or t.state then
      return 'the hold was written by an older lampo (layout 1): not readable here'
    end
    return 'the hold lacks its state, data or body'
  end
  if not t.x then
    return 'the hold data is not JSON'
  end
  return bad_request(t.x)
end

-- The hold at h, loaded and checked: (t, nil) for a sound hold or none (t.s nil),
-- (nil, problem) for a key of another type, a malformed hold, or an event key of a wrong
-- type (the transition could not be written whole).
local function load_checked(h)
  local broken = broken_keys()
  if broken then
    return nil, broken
  end
  if not HOLDS[h] and not kind_ok(h, 'hash') then
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

-- Plan the hold's units back to available of their pools, out of held ('h') or sold
-- ('s'), with its customer's counters (per SKU: two pools of one SKU add up).
local function to_pool(p, t, from)
  local x = t.x
  local cust, skus = x[D_CUST], x[D_SKUS]
  for i = 1, #skus, 3 do
    local key, q = skus[i], skus[i + 1]
    local bad = incr(p, K_STOCK, 'v:' .. key, q, true, true)
      or incr(p, K_STOCK, from .. ':' .. key, -q, true, true)
      or incr(p, K_CNT, cust .. SEP .. sku_of(key), -q, true, true)
    if bad then
      return bad
    end
  end
  if x[D_ELIMIT] then
    return incr(p, K_CNT, cust .. SEP, -x[D_UNITS], true, true)
  end
  return nil
end

-- Plan the hold's units from one stock column to another ('h' to 's': paid), per pool.
local function move(p, t, from, to)
  local skus = t.x[D_SKUS]
  for i = 1, #skus, 3 do
    local key, q = skus[i], skus[i + 1]
    local bad = incr(p, K_STOCK, from .. ':' .. key, -q, true, true)
      or incr(p, K_STOCK, to .. ':' .. key, q, true, true)
    if bad then
      return bad
    end
  end
  return nil
end

-- Plan the order into the live totals (sign 1) or out of them (sign -1: the order was
-- counted in, so its rows must be there, and cannot fall below zero).
local function count(p, t, sign)
  local x = t.x
  local out = sign == -1
  local function signed(v)
    v = num(v)
    return out and neg(v) or v
  end
  local ok, lines = x[D_OK], x[D_LINES]
  local bad = incr(p, K_OU, ok, signed(1), out, out)
    or incr(p, K_OA, ok, signed(x[D_AMT]), out, out)
  for i = 1, #lines, 3 do
    local lk, lu, la = lines[i], lines[i + 1], lines[i + 2]
    bad = bad or incr(p, K_LU, lk, signed(lu), out, out) or incr(p, K_LA, lk, signed(la), out, out)
  end
  return bad
end

-- A held hold ends (released or expired): stock back, off the deadline index. Checked in
-- full first: the problem as text (nothing kept), or nil (kept for flush).
local function end_held(h, t, id, state, now_iso)
  local p = plan()
  local bad = to_pool(p, t, 'h')
  if bad then
    return bad
  end
  commit(p)
  hset(h, t, 's', state, 'e', now_iso)
  ZREMS[#ZREMS + 1] = id
  return nil
end
